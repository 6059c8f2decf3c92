"""training.data.bag_reader: robot bags via TopicConfig, rclpy-serialised bags, folders, bad input."""

import math
import shutil

import numpy as np
import pytest

from moejepa_ros.codecs import action_to_msg, compress_image, make_image, new_message
from testing.bags import CAMERA, CMD, MS, ODOM, README_TOPICS, T, frame, quaternion, robot_bag, write_bag
from training.data.bag_reader import find_bags, read_bag, read_bags
from training.data.episode import BagDataError
from training.data.state import yaw
from training.data.topics import TopicConfig

DT = 50 * MS
IMG, ACT, REW, EPI, STA = "/camera/image_raw", "/action", "/reward", "/episode", "/state"
ROLLOUT_TYPES = {
    IMG: "sensor_msgs/msg/Image",
    ACT: "std_msgs/msg/Float32MultiArray",
    REW: "std_msgs/msg/Float32",
    EPI: "std_msgs/msg/Int32",
    STA: "std_msgs/msg/Float32MultiArray",
}


def f32arr(v):
    return T["std_msgs/msg/Float32MultiArray"](
        layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0), data=np.asarray(v, np.float32)
    )


def rollout_records(episodes=3, length=6, start=0, edit=None):
    """A bag laid out like training.rollouts writes it; `edit(kind, e, t, stamp, msg)` may replace a
    message (return it) or drop it (return None)."""
    recs, g, truth = [], start, []
    for e in range(episodes):
        recs.append((EPI, g * DT, T["std_msgs/msg/Int32"](data=e)))
        fr, ac, rw = [], [], []
        for t in range(length):
            st = g * DT
            img = make_image(T["sensor_msgs/msg/Image"], frame(100 * e + t), "rgb8", st, "camera")
            a, r = np.array([e, t + 0.5], np.float32), float(t)
            items = [(IMG, img), (STA, f32arr([e, t, 1.0]))]
            if t < length - 1:
                items += [(ACT, f32arr(a)), (REW, T["std_msgs/msg/Float32"](data=r))]
                ac.append(a), rw.append(r)
            fr.append(frame(100 * e + t))
            for topic, msg in items:
                if edit is not None:
                    msg = edit(topic, e, t, st, msg)
                if msg is not None:
                    recs.append((topic, st, msg))
            g += 1
        g += 1
        truth.append((np.stack(fr), np.stack(ac), np.asarray(rw, np.float32)))
    return recs, truth


def assert_episodes(eps, truth):
    assert len(eps) == len(truth)
    for ep, (f, a, r) in zip(eps, truth):
        assert np.array_equal(ep.frames, f)
        assert np.array_equal(ep.actions[:-1], a) and np.array_equal(ep.rewards[:-1], r)


# -- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rollout_layout_reads_exactly(tmp_path, storage):
    recs, truth = rollout_records()
    bag = write_bag(tmp_path / "b", recs, ROLLOUT_TYPES, storage)
    eps, summ = read_bag(bag)
    assert_episodes(eps, truth)
    assert summ.episodes == 3 and summ.frames == 18 and not summ.dropped_frames
    assert eps[1].state.tolist()[2] == [1.0, 2.0, 1.0]
    assert eps[0].source == str(bag)
    # the raw storage file alone reads too (no metadata.yaml needed)
    (raw,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    assert_episodes(read_bag(raw)[0], truth)


def test_rclpy_serialised_bag_reads_identically(tmp_path):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32, Float32MultiArray, Int32

    def to_rclpy(topic, msg):
        if topic == IMG:
            m = make_image(
                Image,
                np.asarray(msg.data).reshape(msg.height, msg.width, 3),
                "rgb8",
                msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
                "camera",
            )
        elif topic in (ACT, STA):
            m = Float32MultiArray()
            m.data = np.asarray(msg.data, np.float32).tolist()
        elif topic == REW:
            m = Float32(data=float(msg.data))
        else:
            m = Int32(data=int(msg.data))
        return serialize_message(m)

    recs, truth = rollout_records()
    ref = read_bag(write_bag(tmp_path / "rosbags", recs, ROLLOUT_TYPES))[0]
    raw = [(topic, t, to_rclpy(topic, m)) for topic, t, m in recs]
    got, summ = read_bag(write_bag(tmp_path / "rclpy", raw, ROLLOUT_TYPES))
    assert_episodes(got, truth)
    for a, b in zip(ref, got):
        for k in ("frames", "actions", "rewards", "state", "stamps_ns"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), k


def test_robot_bag_twist_hold_header_stamps_and_gap_split(tmp_path):
    """Camera at 20 Hz with header stamps (logged 3 ms late), /cmd_vel Twist at ~7 Hz, a 2 s pause."""
    types = {"/camera/color/image_raw": "sensor_msgs/msg/Image", "/cmd_vel": "geometry_msgs/msg/Twist"}
    img_st = np.concatenate([np.arange(1000, 2000, 50), np.arange(4000, 4500, 50)]) * MS
    cmd_st = np.arange(1010, 4600, 140) * MS
    recs = [
        (
            "/camera/color/image_raw",
            int(s) + 3 * MS,
            make_image(T["sensor_msgs/msg/Image"], frame(i, 24, 40), "rgb8", int(s), "cam"),
        )
        for i, s in enumerate(img_st)
    ]
    cmds = np.stack([np.arange(len(cmd_st)) * 0.1, -np.arange(len(cmd_st)) * 0.01], 1).astype(np.float32)
    for s, c in zip(cmd_st, cmds):
        recs.append(
            (
                "/cmd_vel",
                int(s),
                action_to_msg(c, new_message(T["geometry_msgs/msg/Twist"]), fields=["linear.x", "angular.z"]),
            )
        )
    bag = write_bag(tmp_path / "robot", recs, types)
    eps, summ = read_bag(bag, TopicConfig.robot())
    assert [len(e) for e in eps] == [20, 10]
    assert eps[0].frames.shape == (20, 24, 40, 3) and np.all(eps[0].rewards == 0) and eps[0].state is None
    for ep in eps:
        nxt = np.append(ep.stamps_ns[1:], ep.stamps_ns[-1] + 50 * MS)
        want = cmds[np.searchsorted(cmd_st, nxt, side="left") - 1]  # latest command before the next image
        np.testing.assert_allclose(ep.actions, want, atol=1e-7)
    assert eps[1].stamps_ns[0] == 4000 * MS  # header stamps, not log times
    # the first image [1000, 1050) has the command issued at 1010; nothing is dropped
    assert not summ.dropped_frames
    # nearest within 20 ms: only images with a command that close survive
    eps_n, summ_n = read_bag(bag, TopicConfig.robot(align="nearest", tolerance_s=0.02, min_episode_len=1))
    for ep in eps_n:
        k = np.abs(cmd_st[None, :] - ep.stamps_ns[:, None]).argmin(1)
        assert np.all(np.abs(cmd_st[k] - ep.stamps_ns) <= 20 * MS)
        np.testing.assert_allclose(ep.actions, cmds[k], atol=1e-7)
    assert summ_n.dropped_frames["no action within tolerance"] > 0


def assert_robot_episodes(eps, truth, state=False):
    assert [len(e) for e in eps] == [len(t["frames"]) for t in truth]
    for ep, t in zip(eps, truth):
        assert np.array_equal(ep.frames, t["frames"]) and np.array_equal(ep.stamps_ns, t["stamps_ns"])
        assert np.array_equal(ep.actions, t["actions"])  # the command issued right after each image
        if state:
            np.testing.assert_allclose(ep.state, t["state"], atol=1e-5)
            assert ep.state_names == ("x", "y", "yaw")
        else:
            assert ep.state is None and ep.state_names is None


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8"])
def test_a_camera_and_cmd_vel_bag_reads_with_the_readme_recipe_and_the_preset(tmp_path, encoding):
    bag, truth = robot_bag(tmp_path / "robot", encoding)
    eps, summ = read_bag(bag, TopicConfig.from_dict(README_TOPICS))
    assert_robot_episodes(eps, truth)
    assert summ.notes == [
        f"{bag}: optional topic /episode absent: episodes split at gaps > split_gap_s=1.0 s",
        f"{bag}: optional topic /state absent: no state (probes and evaluation go without it)",
    ]
    eps, summ = read_bag(bag, TopicConfig.from_dict({"preset": "robot"}))
    assert_robot_episodes(eps, truth)
    assert summ.notes == [f"{bag}: optional topic /odom absent: no state (probes and evaluation go without it)"]


@pytest.mark.parametrize(("present", "key"), [((CAMERA, ODOM), "action_topic"), ((CMD,), "image_topic")])
def test_a_bag_without_a_required_topic_fails_in_one_line_naming_what_it_has(tmp_path, present, key):
    bag, _ = robot_bag(tmp_path / "partial", topics=present, extra={"/tf": "tf2_msgs/msg/TFMessage"})
    with pytest.raises(BagDataError) as ei:
        read_bag(bag, TopicConfig.robot())
    have = ", ".join(
        f"{t} ({ty})"
        for t, ty in sorted(
            {
                CAMERA: "sensor_msgs/msg/Image",
                CMD: "geometry_msgs/msg/Twist",
                ODOM: "nav_msgs/msg/Odometry",
                "/tf": "tf2_msgs/msg/TFMessage",
            }.items()
        )
        if t in present or t == "/tf"
    )
    missing = getattr(TopicConfig.robot(), key)
    assert str(ei.value) == f"{bag}, topic {missing}: missing topic: the bag has {have}; set data.topics.{key}"


@pytest.mark.parametrize(
    "msgtype",
    ["nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PoseWithCovarianceStamped"],
)
def test_odometry_or_a_pose_becomes_the_state_x_y_yaw(tmp_path, msgtype):
    bag, truth = robot_bag(tmp_path / "odom", topics=(CAMERA, CMD, ODOM), odom_type=msgtype)
    assert any(abs(y) > 3 for t in truth for y in t["state"][:, 2])  # yaw near +-pi is covered
    eps, summ = read_bag(bag, TopicConfig.robot())
    assert_robot_episodes(eps, truth, state=True)
    assert not summ.notes and not summ.dropped_frames


def test_yaw_of_a_quaternion():
    for a in np.linspace(-3 * math.pi, 3 * math.pi, 37):
        q = quaternion(float(a))
        neg = T["geometry_msgs/msg/Quaternion"](x=-q.x, y=-q.y, z=-q.z, w=-q.w)  # the same rotation
        for y in (yaw(q), yaw(neg)):
            assert -math.pi <= y <= math.pi and math.remainder(y - a, math.tau) == pytest.approx(0.0, abs=1e-9)


def test_a_state_topic_of_another_type_is_refused_naming_the_types_read(tmp_path):
    bag, _ = robot_bag(tmp_path / "imu", extra={ODOM: "sensor_msgs/msg/Imu"})
    with pytest.raises(BagDataError) as ei:
        read_bag(bag, TopicConfig.robot())
    assert "topic /odom: wrong message type: expected one of [" in str(ei.value) and "Odometry" in str(ei.value)
    assert str(ei.value).endswith("found sensor_msgs/msg/Imu; set data.topics.state_topic=null")


def test_compressed_images_twist_stamped_and_joint_trajectory(tmp_path):
    types = {
        "/cam/compressed": "sensor_msgs/msg/CompressedImage",
        "/cmd": "geometry_msgs/msg/TwistStamped",
        "/arm": "trajectory_msgs/msg/JointTrajectory",
    }
    recs = []
    for i in range(5):
        st = (i + 1) * DT
        m = new_message(T["sensor_msgs/msg/CompressedImage"])
        m.header.stamp.sec, m.header.stamp.nanosec = st // 10**9, st % 10**9
        m.format = "png"
        m.data = np.frombuffer(compress_image(frame(i), "png"), np.uint8)
        recs.append(("/cam/compressed", st, m))
        tw = action_to_msg(
            np.array([i, -i], np.float32),
            new_message(T["geometry_msgs/msg/TwistStamped"]),
            fields=["linear.x", "linear.y"],
            stamp_ns=st,
        )
        recs.append(("/cmd", st + MS, tw))
        jt = action_to_msg(
            np.array([i, 2 * i, 3 * i], np.float32),
            new_message(T["trajectory_msgs/msg/JointTrajectory"]),
            joint_names=["a", "b", "c"],
        )
        recs.append(("/arm", st + MS, jt))
    bag = write_bag(tmp_path / "c", recs, types)
    cfg = TopicConfig.robot(
        image_topic="/cam/compressed",
        image_type="CompressedImage",
        action_topic="/cmd",
        action_type="geometry_msgs/msg/TwistStamped",
        action_fields=("linear.x", "linear.y"),
    )
    (ep,), _ = read_bag(bag, cfg)
    assert np.array_equal(ep.frames, np.stack([frame(i) for i in range(5)]))
    assert ep.actions.tolist() == [[i, -i] for i in range(5)]
    cfg2 = TopicConfig.robot(
        image_topic="/cam/compressed",
        image_type="CompressedImage",
        action_topic="/arm",
        action_type="trajectory_msgs/msg/JointTrajectory",
    )
    (ep,), _ = read_bag(bag, cfg2)
    assert ep.actions.tolist() == [[i, 2 * i, 3 * i] for i in range(5)]


def test_folders_of_bags(tmp_path):
    recs, truth = rollout_records(episodes=1)
    write_bag(tmp_path / "runs" / "a", recs, ROLLOUT_TYPES)
    write_bag(tmp_path / "runs" / "day2" / "b", recs, ROLLOUT_TYPES, "sqlite3")
    write_bag(tmp_path / "runs" / ".c.partial" / "c", recs, ROLLOUT_TYPES)  # hidden: in progress
    bags = find_bags(tmp_path / "runs")
    assert [b.name for b in bags] == ["a", "b"]
    eps, summ = read_bags(tmp_path / "runs")
    assert len(eps) == 2 and len(summ.files) == 2
    with pytest.raises(BagDataError, match="no such file"):
        find_bags(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagDataError, match="no bags"):
        find_bags(tmp_path / "empty")


def test_topic_config_validation_names_the_field():
    with pytest.raises(ValueError, match="action_type"):
        TopicConfig(action_type="Pose")
    with pytest.raises(ValueError, match="align"):
        TopicConfig(align="linear")
    with pytest.raises(ValueError, match="action_fields"):
        TopicConfig(action_fields=("linear.w",))
    assert TopicConfig.from_dict(TopicConfig.robot().to_dict()) == TopicConfig.robot()
    with pytest.raises(ValueError, match="unknown keys"):
        TopicConfig.from_dict({"image_topc": "/x"})


# -- bad input -----------------------------------------------------------------------------------


def _bad_bag(tmp_path, case, storage="mcap"):
    """A 3-episode rollout bag with one defect in episode 1 (or a broken file); returns its path."""

    def edit(topic, e, t, st, msg):
        if e != 1 or t != 2:
            return msg
        if case == "size" and topic == IMG:
            return make_image(T["sensor_msgs/msg/Image"], frame(1, 40, 40), "rgb8", st, "camera")
        if case == "garbage_image" and topic == IMG:
            return b"\x00\x01\x00\x00\xff\xff"
        if case == "garbage_action" and topic == ACT:
            return b"\x00\x01\x00\x00\xff"
        return msg

    recs, truth = rollout_records(edit=edit)
    types = dict(ROLLOUT_TYPES)
    if case == "missing":
        recs = [r for r in recs if r[0] != ACT]
        types.pop(ACT)
    if case == "wrongtype":
        types[ACT] = "geometry_msgs/msg/Twist"
        recs = [(tp, t, new_message(T[types[ACT]]) if tp == ACT else m) for tp, t, m in recs]
    bag = write_bag(tmp_path / f"bad_{case}", recs, types, storage)
    if case in ("corrupt", "truncated"):
        (f,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
        data = f.read_bytes()
        f.write_bytes(
            data[: len(data) // 2]
            if case == "truncated"
            else data[:64] + bytes(np.random.default_rng(0).integers(0, 256, len(data) - 64, np.uint8))
        )
    return bag, truth


WHOLE_BAG = {  # case -> what the error says; the whole bag is skipped
    "missing": ("missing topic", ACT),
    "wrongtype": ("wrong message type: expected std_msgs/msg/Float32MultiArray, found geometry_msgs/msg/Twist", ACT),
    "corrupt": ("", None),
    "truncated": ("", None),
}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("case", sorted(WHOLE_BAG))
def test_bad_bag_named_and_skipped(tmp_path, case, storage):
    if storage == "sqlite3" and case in ("missing", "wrongtype"):
        pytest.skip("storage-independent")
    bad, _ = _bad_bag(tmp_path, case, storage)
    recs, truth = rollout_records()
    good = write_bag(tmp_path / "good", recs, ROLLOUT_TYPES, storage)
    with pytest.raises(BagDataError) as ei:
        read_bags([good, bad])
    msg, topic = WHOLE_BAG[case]
    assert str(bad) in str(ei.value) and msg in str(ei.value)
    if topic:
        assert f"topic {topic}" in str(ei.value)
    eps, summ = read_bags([good, bad], skip_bad=True)
    if case == "truncated" and str(bad) not in summ.skipped_files:
        # a store readable up to the cut keeps what came before and says so
        assert summ.errors and any("stopped reading early" in n for n in summ.notes)
        assert_episodes(eps[:3], truth)
    else:
        assert_episodes(eps, truth)
        assert list(summ.skipped_files) == [str(bad)]


RECORD_CASES = {  # case -> (error text, topic, index); the defect is message #8 of its topic
    "size": ("image size changed mid-bag: 40x40 after 32x32", IMG, 8),
    "garbage_image": ("unreadable record", IMG, 8),
    "garbage_action": ("unreadable record", ACT, 7),
}


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_bad_record_named_and_rest_loads(tmp_path, case):
    bag, truth = _bad_bag(tmp_path, case)
    text, topic, index = RECORD_CASES[case]
    with pytest.raises(BagDataError) as ei:
        read_bag(bag)
    e = ei.value
    assert isinstance(e, ValueError) and e.path == str(bag) and e.topic == topic and e.index == index
    assert text in str(e) and f"{bag}, topic {topic}, message #{index}" in str(e)
    eps, summ = read_bag(bag, skip_bad=True)
    # episodes 0 and 2 intact; episode 1 is cut at the bad record (frames 0-1 and 3-5 survive)
    assert_episodes([eps[0], eps[-1]], [truth[0], truth[2]])
    mid = eps[1:-1]
    assert [len(m) for m in mid] == [2, 3]
    assert np.array_equal(mid[0].frames, truth[1][0][:2]) and np.array_equal(mid[1].frames, truth[1][0][3:])
    assert sum(summ.dropped_frames.values()) == 1 and len(summ.errors) == 1
    assert summ.frames == 6 + 5 + 6 and summ.episodes == 4


def test_no_usable_data_is_an_error(tmp_path):
    recs, _ = rollout_records(episodes=1)
    bag = write_bag(tmp_path / "noact", [r for r in recs if r[0] != ACT], {k: v for k, v in ROLLOUT_TYPES.items()})
    with pytest.raises(BagDataError, match="no usable episode"):
        read_bag(bag)
    bag2 = write_bag(tmp_path / "noimg", [r for r in recs if r[0] != IMG], ROLLOUT_TYPES)
    with pytest.raises(BagDataError, match="topic has no messages"):
        read_bag(bag2)
    shutil.rmtree(bag2)
    with pytest.raises(BagDataError, match="no such file"):
        read_bags(bag2)
