"""training.data.topics.TopicConfig: command types by any accepted name, configs saved before the registry, presets."""

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


def test_the_robot_preset_sets_a_robots_topics_and_other_keys_override_it():
    cfg = TopicConfig.from_dict({"preset": "robot"})
    assert (cfg.image_topic, cfg.image_msgtype) == ("/camera/color/image_raw", "sensor_msgs/msg/Image")
    assert (cfg.action_topic, cfg.action_msgtype) == ("/cmd_vel", "geometry_msgs/msg/Twist")
    assert (cfg.reward_topic, cfg.episode_topic, cfg.state_topic) == (None, None, "/odom")
    assert cfg == TopicConfig.robot() and TopicConfig.from_dict(cfg.to_dict()) == cfg
    mine = TopicConfig.from_dict({"preset": "robot", "image_topic": "/front/image", "state_topic": None})
    assert (mine.image_topic, mine.state_topic, mine.action_topic) == ("/front/image", None, "/cmd_vel")


def test_an_unknown_preset_is_refused_by_name():
    with pytest.raises(ValueError, match="preset='robto': expected one of \\['arm', 'robot'\\]"):
        TopicConfig.from_dict({"preset": "robto"})
