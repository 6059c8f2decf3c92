"""The command type registry: a toy type added through `codecs.register_command_type` alone
round-trips on rclpy and rosbags messages, is written by the rollouts into a real rosbag2 file
and read back by the bag reader as actions, and is a valid `action_type` of both nodes."""

import numpy as np
import pytest

from moejepa_ros import codecs
from moejepa_ros.codecs import CodecError
from testing.ros_types import TS, serialization

geometry = pytest.importorskip("geometry_msgs.msg")

TOY = "geometry_msgs/msg/Vector3Stamped"


def _encode(msg, a, o):
    for axis in "xyz":
        setattr(msg.vector, axis, 0.0)
    for axis, v in zip(o.fields, a):
        setattr(msg.vector, axis, float(v))


def _decode(msg, n, o):
    return np.array([getattr(msg.vector, axis) for axis in o.fields], np.float64)


@pytest.fixture
def toy():
    """A planar command: the action fills vector.x, vector.y by default; stamped."""
    ct = codecs.register_command_type(
        codecs.CommandType(
            TOY,
            _encode,
            _decode,
            lambda msg, o: len(o.fields),
            stamped=True,
            fields=("x", "y", "z"),
            default_fields=("x", "y"),
        )
    )
    yield ct
    del codecs.COMMAND_TYPES[TOY]


@pytest.mark.parametrize("cls", [geometry.Vector3Stamped, TS.types[TOY]], ids=["rclpy", "rosbags"])
def test_toy_round_trips_on_messages(toy, cls):
    msg = codecs.action_to_msg([0.5, -2.0], codecs.new_message(cls), low=-1.0, high=1.0, stamp_ns=3_000_000_007)
    assert (msg.vector.x, msg.vector.y, msg.vector.z) == (0.5, -1.0, 0.0)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (3, 7)
    np.testing.assert_array_equal(codecs.msg_to_action(msg, 2), np.float32([0.5, -1.0]))
    codecs.action_to_msg([0.25], msg, fields=["z"])
    assert (msg.vector.x, msg.vector.z) == (0.0, 0.25)
    assert codecs.action_size(msg) == 2 and codecs.action_size(msg, fields="x,y,z") == 3
    with pytest.raises(CodecError, match=r"fields \['w'\] are not Vector3Stamped fields"):
        codecs.action_to_msg([0.0], msg, fields=["w"])


def test_toy_rclpy_and_rosbags_serialisations_agree(toy):
    live = codecs.action_to_msg([0.1, -0.2], geometry.Vector3Stamped(), stamp_ns=5)
    bag = TS.deserialize_cdr(serialization.serialize_message(live), TOY)
    np.testing.assert_array_equal(codecs.msg_to_action(bag, 2), np.float32([0.1, -0.2]))
    assert bag.header.stamp.nanosec == 5


def test_toy_through_a_rosbag2_file(toy, tmp_path):
    from rosbags.rosbag2 import Reader

    from training.data.bag_reader import read_bags
    from training.data.topics import TopicConfig
    from training.rollouts import TOPICS, record_rollouts

    (ref,) = record_rollouts("two_rooms", "walk", 2, tmp_path / "ref", max_steps=6, seed=1)
    (bag,) = record_rollouts("two_rooms", "walk", 2, tmp_path / "toy", max_steps=6, seed=1, action_msg=TOY)
    with Reader(bag) as r:
        assert {c.topic: c.msgtype for c in r.connections}[TOPICS["action"]] == TOY
    want, _ = read_bags(ref)
    got, summary = read_bags(bag, TopicConfig(action_type=TOY))
    assert len(got) == len(want) == 2
    for a, b in zip(want, got):
        assert b.actions.shape == a.actions.shape and b.actions.shape[1] == 2
        np.testing.assert_array_equal(b.actions, a.actions)  # float32 values held exactly as float64


def test_toy_is_a_node_action_type(toy):
    params = pytest.importorskip("moejepa_ros.ros.params")
    from moejepa_ros.ros.messages import action_msg_class

    for specs in (params.PLANNER_NODE_SPECS, params.SIM_NODE_SPECS):
        base = {s.name: s.default for s in specs}
        assert params.check_all(specs, {**base, "action_type": TOY}) is None
    assert action_msg_class(TOY) is geometry.Vector3Stamped


def test_unregistered_types_and_clashes_are_refused():
    params = pytest.importorskip("moejepa_ros.ros.params")
    base = {s.name: s.default for s in params.PLANNER_NODE_SPECS}
    assert TOY in params.check_all(params.PLANNER_NODE_SPECS, {**base, "action_type": TOY})
    with pytest.raises(CodecError, match=f"command type '{TOY}' is not registered"):
        codecs.command_type(TOY)
    with pytest.raises(CodecError, match="Vector3Stamped is not a Twist / TwistStamped"):
        codecs.action_to_msg([0.0, 0.0], geometry.Vector3Stamped())
    twist = codecs.COMMAND_TYPES["geometry_msgs/msg/Twist"]
    with pytest.raises(CodecError, match=r"\['geometry_msgs/msg/Twist', 'twist'\] already registered"):
        codecs.register_command_type(twist)
    with pytest.raises(CodecError, match="'Twist' is not a full ROS type name"):
        codecs.register_command_type(codecs.CommandType("Twist", _encode, _decode, len))


def test_aliases_and_defaults_live_in_the_registry():
    assert codecs.command_type("twist") is codecs.command_type("geometry_msgs/msg/Twist")
    assert codecs.command_type("geometry_msgs/msg/TwistStamped").stamped
    assert (
        codecs.command_type("twist_stamped").default_fields == codecs.DEFAULT_TWIST_FIELDS == ("linear.x", "angular.z")
    )
    assert "std_msgs/msg/Float64MultiArray" in codecs.COMMAND_TYPE_NAMES


def test_bare_message_names_name_their_type_and_unknown_ones_list_the_known():
    assert codecs.command_type("Twist").name == "geometry_msgs/msg/Twist"
    assert codecs.command_type("JointTrajectory").name == "trajectory_msgs/msg/JointTrajectory"
    assert codecs.command_type("Float64MultiArray").name == "std_msgs/msg/Float64MultiArray"
    with pytest.raises(codecs.CodecError, match="'Pose' is not registered .*geometry_msgs/msg/Twist"):
        codecs.command_type("Pose")


def test_a_registered_type_without_a_message_package_is_a_one_line_node_error():
    from moejepa_ros.ros.messages import action_msg_class

    name = "no_such_msgs/msg/Push"
    codecs.register_command_type(codecs.CommandType(name, _encode, _decode, lambda msg, o: 3))
    try:
        with pytest.raises(ValueError, match=r"action_type 'no_such_msgs/msg/Push': no message class"):
            action_msg_class(name)
    finally:
        del codecs.COMMAND_TYPES[name]
