"""training.data.topics.TopicConfig: command types by any accepted name, configs saved before the registry."""

import pytest

from training.data.topics import TopicConfig


@pytest.mark.parametrize("name", ["Twist", "twist", "geometry_msgs/msg/Twist"])
def test_every_spelling_of_a_command_type_reads_the_same_topic_type(name):
    assert TopicConfig(action_type=name).action_msgtype == "geometry_msgs/msg/Twist"


def test_a_config_saved_before_the_registry_still_loads():
    # those configs carried the Twist default fields whatever the command type was
    old = {"action_type": "Float32MultiArray", "action_fields": ["linear.x", "angular.z"]}
    cfg = TopicConfig.from_dict(old)
    assert cfg.action_msgtype == "std_msgs/msg/Float32MultiArray" and cfg.action_fields is None
    twist = TopicConfig.from_dict({"action_type": "Twist", "action_fields": ["linear.x", "angular.z"]})
    assert twist.action_fields == ("linear.x", "angular.z")


def test_fields_for_a_type_without_named_fields_are_refused_with_the_type():
    with pytest.raises(ValueError, match="Float32MultiArray has no named fields"):
        TopicConfig(action_type="Float32MultiArray", action_fields=("linear.y",))
