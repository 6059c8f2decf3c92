"""Action vector ⇄ command message codecs for Twist, TwistStamped, Float32MultiArray and
JointTrajectory, on rclpy and rosbags message classes alike."""

import numpy as np
import pytest

from moejepa_ros import codecs as C
from moejepa_ros.codecs import CodecError
from testing.ros_types import TS, serialization

geometry = pytest.importorskip("geometry_msgs.msg")
std = pytest.importorskip("std_msgs.msg")
traj = pytest.importorskip("trajectory_msgs.msg")

TYPES = {
    "geometry_msgs/msg/Twist": geometry.Twist,
    "geometry_msgs/msg/TwistStamped": geometry.TwistStamped,
    "std_msgs/msg/Float32MultiArray": std.Float32MultiArray,
    "trajectory_msgs/msg/JointTrajectory": traj.JointTrajectory,
}
CASES = [(name, flavour) for name in TYPES for flavour in ("rclpy", "rosbags")]
JOINTS = ["shoulder", "elbow", "wrist"]
FIELDS3 = ["linear.x", "linear.y", "angular.z"]  # Twist types only; the others ignore it


def _cls(name, flavour):
    return TYPES[name] if flavour == "rclpy" else TS.types[name]


@pytest.mark.parametrize("name,flavour", CASES)
def test_round_trip_and_clamp(name, flavour):
    msg = C.new_message(_cls(name, flavour))
    a = np.array([0.25, -3.0, 0.5], np.float32)
    out = C.action_to_msg(a, msg, low=[-1, -1, -1], high=1.0, joint_names=JOINTS, fields=FIELDS3)
    assert out is msg
    back = C.msg_to_action(msg, 3, fields=FIELDS3)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, [0.25, -1.0, 0.5])
    # Unclamped: values go through unchanged (float32 precision).
    C.action_to_msg(a, msg, joint_names=JOINTS, fields=FIELDS3)
    np.testing.assert_array_equal(C.msg_to_action(msg, 3, fields=FIELDS3), a)


def _rosbags_from_rclpy_bytes(raw: bytes, name: str):
    """Deserialise rclpy bytes with rosbags.

    Measured quirk (rclpy Kilted wheels + rosbags 0.11): ``serialize_message`` of a
    JointTrajectory reports 12-44 trailing bytes beyond the CDR payload, which rosbags'
    strict ``deserialize_cdr`` rejects ("CDR message size mismatch"); the payload itself is
    correct, so fall back to rosbags' per-type deserialiser for that case only.
    """
    try:
        return TS.deserialize_cdr(raw, name)
    except Exception as exc:  # rosbags.serde.SerdeError
        if "size mismatch" not in str(exc) or not name.endswith("JointTrajectory"):
            raise
        msgdef = TS.get_msgdef(name)
        assert raw[1] == 1  # little-endian CDR
        msg, _ = msgdef.deserialize_cdr_le(raw[4:], 0, msgdef.cls, TS)
        return msg


@pytest.mark.parametrize("name", TYPES)
def test_rclpy_and_rosbags_serialisations_agree(name):
    a = np.array([0.1, -0.2], np.float32)
    live = C.action_to_msg(a, C.new_message(TYPES[name]), joint_names=JOINTS[:2], stamp_ns=5)
    bag = _rosbags_from_rclpy_bytes(serialization.serialize_message(live), name)
    np.testing.assert_array_equal(C.msg_to_action(bag, 2), a)
    bag2 = C.action_to_msg(a, C.new_message(TS.types[name]), joint_names=JOINTS[:2], stamp_ns=5)
    live2 = serialization.deserialize_message(bytes(TS.serialize_cdr(bag2, name)), TYPES[name])
    np.testing.assert_array_equal(C.msg_to_action(live2, 2), a)
    if hasattr(live2, "header"):
        assert live2.header.stamp.nanosec == 5


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_twist_field_mapping(flavour):
    msg = C.new_message(_cls("geometry_msgs/msg/Twist", flavour))
    msg.linear.y = 9.0  # stale value from a reused message must be cleared
    C.action_to_msg([0.3, -0.7], msg, fields=["linear.x", "angular.z"])
    assert (msg.linear.x, msg.linear.y, msg.angular.z) == (0.3, 0.0, -0.7)
    np.testing.assert_allclose(C.msg_to_action(msg, 2, fields=["linear.x", "angular.z"]), [0.3, -0.7], rtol=1e-6)
    C.action_to_msg([0.1, 0.2], msg)  # the one default: a differential-drive base
    assert (msg.linear.x, msg.linear.y, msg.angular.z) == (0.1, 0.0, 0.2)
    np.testing.assert_array_equal(C.msg_to_action(msg, 2), np.float32([0.1, 0.2]))
    C.action_to_msg([1, 2, 3, 4, 5, 6], msg, fields=C.TWIST_FIELDS)
    assert [msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.x, msg.angular.y, msg.angular.z] == [1, 2, 3, 4, 5, 6]
    st = C.action_to_msg(
        [0.5],
        C.new_message(_cls("geometry_msgs/msg/TwistStamped", flavour)),
        fields=["linear.x"],
        stamp_ns=2_000_000_001,
    )
    assert st.twist.linear.x == 0.5 and (st.header.stamp.sec, st.header.stamp.nanosec) == (2, 1)


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_joint_trajectory_details(flavour):
    cls = _cls("trajectory_msgs/msg/JointTrajectory", flavour)
    msg = C.action_to_msg([1.0, 2.0, 3.0], C.new_message(cls), joint_names=JOINTS, time_from_start_s=0.25)
    assert list(msg.joint_names) == JOINTS and len(msg.points) == 1
    p = msg.points[0]
    assert list(p.positions) == [1.0, 2.0, 3.0] and len(p.velocities) == 0
    assert (p.time_from_start.sec, p.time_from_start.nanosec) == (0, 250_000_000)
    # reorder by name on the way back
    np.testing.assert_array_equal(C.msg_to_action(msg, 3, joint_names=["wrist", "shoulder", "elbow"]), [3, 1, 2])
    # names already on the message are reused; velocities as the documented alternative
    C.action_to_msg([4.0, 5.0, 6.0], msg, point_field="velocities")
    assert list(msg.points[0].velocities) == [4.0, 5.0, 6.0] and len(msg.points[0].positions) == 0
    np.testing.assert_array_equal(C.msg_to_action(msg, 3, point_field="velocities"), [4, 5, 6])
    with pytest.raises(CodecError, match=r"lacks joints \['knee'\]"):
        C.msg_to_action(msg, 1, joint_names=["knee"], point_field="velocities")
    msg.points = []
    with pytest.raises(CodecError, match="JointTrajectory.points is empty"):
        C.msg_to_action(msg, 3)


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_multiarray_data_type_is_native_for_flavour(flavour):
    msg = C.action_to_msg([1.5, 2.5], C.new_message(_cls("std_msgs/msg/Float32MultiArray", flavour)))
    if flavour == "rosbags":
        assert isinstance(msg.data, np.ndarray) and msg.data.dtype == np.float32
    else:
        assert list(msg.data) == [1.5, 2.5]
    f64 = std.Float64MultiArray() if flavour == "rclpy" else C.new_message(TS.types["std_msgs/msg/Float64MultiArray"])
    C.action_to_msg([0.1], f64)
    assert list(f64.data) == [0.1]  # float64 kept at full precision


def test_clamp_action():
    out = C.clamp_action([2.0, -2.0, 0.5], -1.0, [1.0, 0.0, 0.25])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.0, -1.0, 0.25])
    np.testing.assert_array_equal(C.clamp_action([5.0], -np.inf, np.inf), [5.0])


@pytest.mark.parametrize(
    "args,pattern",
    [
        (([np.nan, 0.0], -1, 1), r"action has non-finite values at indices \[0\]"),
        (([0.0, np.inf], -1, 1), r"indices \[1\]"),
        (([0.0, 0.0], [-1, -1, -1], 1), r"low has shape \(3,\), expected \(2,\)"),
        (([0.0, 0.0], -1, [1]), r"high has shape \(1,\), expected \(2,\)"),
        (([0.0], 1, -1), r"low=\[1.0\] exceeds high=\[-1.0\]"),
        (([0.0], np.nan, 1), "low contains NaN"),
        (([], -1, 1), "non-empty 1-D"),
        ((np.zeros((2, 2)), -1, 1), r"shape \(2, 2\)"),
        ((["a"], -1, 1), "not numeric"),
    ],
)
def test_clamp_action_errors(args, pattern):
    with pytest.raises(CodecError, match=pattern):
        C.clamp_action(*args)


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_action_to_msg_errors(flavour):
    twist = C.new_message(_cls("geometry_msgs/msg/Twist", flavour))
    jt = C.new_message(_cls("trajectory_msgs/msg/JointTrajectory", flavour))
    with pytest.raises(CodecError, match="non-finite"):
        C.action_to_msg([np.nan], twist)
    with pytest.raises(CodecError, match="non-finite"):
        C.action_to_msg([np.inf], twist, low=-1, high=1)  # clamping never hides a NaN/inf
    with pytest.raises(CodecError, match=r"7 dims but the default Twist fields \['linear.x', 'angular.z'\] take 2"):
        C.action_to_msg(np.zeros(7), twist)
    with pytest.raises(CodecError, match=r"fields \['linear.w'\] are not Twist fields"):
        C.action_to_msg([0.0], twist, fields=["linear.w"])
    with pytest.raises(CodecError, match="has 1 names but the action has 2"):
        C.action_to_msg([0.0, 1.0], twist, fields=["linear.x"])
    with pytest.raises(CodecError, match="duplicates"):
        C.action_to_msg([0.0, 1.0], twist, fields=["linear.x", "linear.x"])
    with pytest.raises(CodecError, match="both low and high"):
        C.action_to_msg([0.0], twist, low=-1)
    with pytest.raises(CodecError, match="needs joint_names"):
        C.action_to_msg([0.0], jt)
    with pytest.raises(CodecError, match="has 2 names but the action has 1"):
        C.action_to_msg([0.0], jt, joint_names=["a", "b"])
    with pytest.raises(CodecError, match="point_field"):
        C.action_to_msg([0.0], jt, joint_names=["a"], point_field="effort")
    with pytest.raises(CodecError, match="is not a Twist"):
        C.action_to_msg([0.0], C.new_message(_cls("std_msgs/msg/Float32MultiArray", flavour)).layout)


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_msg_to_action_errors(flavour):
    arr = C.action_to_msg([1.0, 2.0], C.new_message(_cls("std_msgs/msg/Float32MultiArray", flavour)))
    with pytest.raises(CodecError, match="data has 2 values, expected action_dim=3"):
        C.msg_to_action(arr, 3)
    with pytest.raises(CodecError, match="action_dim=0"):
        C.msg_to_action(arr, 0)
    twist = C.new_message(_cls("geometry_msgs/msg/Twist", flavour))
    twist.angular.z = float("nan")
    with pytest.raises(CodecError, match="non-finite"):
        C.msg_to_action(twist, 6, fields=C.TWIST_FIELDS)
    jt = C.action_to_msg(
        [1.0, 2.0], C.new_message(_cls("trajectory_msgs/msg/JointTrajectory", flavour)), joint_names=["a", "b"]
    )
    jt.joint_names = ["a"]
    with pytest.raises(CodecError, match=r"positions has 2 values for 1 joint_names"):
        C.msg_to_action(jt, 2)


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_hardening_edge_cases(flavour):
    twist = C.new_message(_cls("geometry_msgs/msg/Twist", flavour))
    # comma-separated names (as a string ROS parameter gives them)
    C.action_to_msg([0.2, 0.4], twist, fields="linear.x, angular.z")
    assert (twist.linear.x, twist.angular.z) == (0.2, 0.4)
    with pytest.raises(CodecError, match="names must be strings"):
        C.action_to_msg([0.0], twist, fields=[3])
    # float64 fields keep full precision through clamping
    C.action_to_msg([0.1, 0.0], twist, low=-1, high=1)
    assert twist.linear.x == 0.1
    # float32 targets refuse values that would overflow to inf
    arr = C.new_message(_cls("std_msgs/msg/Float32MultiArray", flavour))
    with pytest.raises(CodecError, match="overflows float32"):
        C.action_to_msg([1e300], arr)
    with pytest.raises(CodecError, match="overflows float32"):
        C.clamp_action([1e300], -np.inf, np.inf)
    f64 = std.Float64MultiArray() if flavour == "rclpy" else C.new_message(TS.types["std_msgs/msg/Float64MultiArray"])
    C.action_to_msg([1e300], f64)  # fine in a float64 message, not as a float32 action
    with pytest.raises(CodecError, match="overflows float32"):
        C.msg_to_action(f64, 1)
    st = C.new_message(_cls("geometry_msgs/msg/TwistStamped", flavour))
    with pytest.raises(CodecError, match="stamp_ns=-1 is outside"):
        C.action_to_msg([0.0, 0.0], st, stamp_ns=-1)
    with pytest.raises(CodecError, match="is outside 0..2\\*\\*31"):
        C.action_to_msg([0.0, 0.0], st, stamp_ns=2**31 * 10**9)
    jt = C.new_message(_cls("trajectory_msgs/msg/JointTrajectory", flavour))
    with pytest.raises(CodecError, match="time_from_start_s=-1"):
        C.action_to_msg([0.0], jt, joint_names=["a"], time_from_start_s=-1)
    with pytest.raises(CodecError, match="time_from_start_s=nan"):
        C.action_to_msg([0.0], jt, joint_names=["a"], time_from_start_s=float("nan"))
    C.action_to_msg([0.5, 0.6], jt, joint_names="a,b")
    assert list(jt.joint_names) == ["a", "b"]


@pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])
def test_look_alike_messages_are_rejected(flavour):
    for name in ("geometry_msgs/msg/TwistWithCovarianceStamped", "geometry_msgs/msg/TwistWithCovariance"):
        cls = getattr(geometry, name.split("/")[-1]) if flavour == "rclpy" else TS.types[name]
        with pytest.raises(CodecError, match="not a Twist"):
            C.action_to_msg([0.0], C.new_message(cls))
    cls = (
        traj.MultiDOFJointTrajectory if flavour == "rclpy" else TS.types["trajectory_msgs/msg/MultiDOFJointTrajectory"]
    )
    with pytest.raises(CodecError, match="MultiDOFJointTrajectory is not a Twist"):
        C.action_to_msg([0.0], C.new_message(cls), joint_names=["a"])
