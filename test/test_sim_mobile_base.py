"""The mobile-base world: kinematics under its limits, walls and pillars stop it, goal sampling and
success, the two cameras, the data drive, and its bags as a robot records them."""

import math

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from moejepa_ros.sim import data_policy, make_env
from moejepa_ros.sim import mobile_base as mb
from training.rollouts import ROBOT_TOPICS, episode_seed, record_rollouts


@pytest.fixture(scope="module")
def env():
    e = make_env("mobile_base", mode="data")
    yield e
    e.close()


def drive(env, pose, action, steps):
    env.set_pose(pose)
    for _ in range(steps):
        obs, _, _, _, info = env.step(action)
    return obs, info


def test_forward_and_turn_follow_the_command_within_the_acceleration_limits(env):
    _, info = drive(env, [0, -1.0, math.pi / 2], [0.2, 0.0], 30)  # 2 s straight on, +y
    p = info["odom"]
    # 0.2 m/s for 2 s minus the ramp-up (0.1 s at 2 m/s^2): ~0.39 m
    assert abs(p[0]) < 0.01 and 0.36 < p[1] + 1.0 < 0.41 and abs(mb.wrap(p[2] - math.pi / 2)) < 0.01
    assert info["twist"][0] == pytest.approx(0.2, abs=0.01)
    _, info = drive(env, [-1.0, 1.0, 0.0], [0.0, 1.0], 15)  # 1 s at 1 rad/s
    assert 0.9 < info["odom"][2] < 1.0 and math.hypot(info["odom"][0] + 1.0, info["odom"][1] - 1.0) < 0.01
    # commands beyond the limits are clamped; NaN means stop
    _, info = drive(env, [0, -1.0, math.pi / 2], [5.0, float("nan")], 30)
    assert info["twist"][0] == pytest.approx(mb.MAX_LINEAR, abs=0.01) and abs(info["twist"][1]) < 1e-3


def test_walls_and_pillars_stop_the_base(env):
    _, info = drive(env, [1.0, 0.0, 0.0], [0.3, 0.0], 60)  # 4 s at the +x wall
    assert mb.ARENA_HALF - mb.RADIUS - 0.03 < info["odom"][0] < mb.ARENA_HALF - mb.RADIUS + 0.01
    px, py, pr = mb.PILLARS[0]
    _, info = drive(env, [px - 0.6, py, 0.0], [0.3, 0.0], 60)
    assert info["odom"][0] < px - pr - mb.RADIUS + 0.02


def test_goal_mode_samples_goals_in_range_and_scores_success():
    env = make_env("mobile_base", mode="goal")
    try:
        for s in range(20):
            obs, info = env.reset(seed=s)
            d = info["distance"] / mb.BODY_LENGTH
            assert mb.GOAL_RANGE[0] - 1e-6 <= d <= mb.GOAL_RANGE[1] + 1e-6
            assert info["yaw_error"] <= mb.GOAL_YAW_RANGE + 1e-6 and not info["success"]
            assert info["goal_image"].shape == obs.shape == (64, 64, 3)
        # the goal image is what the camera sees at the goal pose
        g = info["goal_state"]
        _, info = env.reset(options={"start": g.tolist(), "goal": g.tolist()})
        assert np.array_equal(env.render(), info["goal_image"]) and info["success"]
        # success needs the heading too
        _, info = env.reset(options={"start": [0.0, -1.0, 0.0], "goal": [0.05, -1.0, 0.4]})
        assert info["distance"] < mb.SUCCESS_XY and not info["success"]
        with pytest.raises(ValueError, match="not free"):
            env.reset(options={"start": [1.49, 0.0, 0.0]})
    finally:
        env.close()


def test_around_tier_puts_a_pillar_between_start_and_goal():
    env = make_env("mobile_base", mode="goal", tier="around")
    try:
        for s in range(10):
            _, info = env.reset(seed=s)
            a, b = info["odom"][:2], info["goal_state"][:2]
            dist = [
                abs((b[0] - a[0]) * (a[1] - py) - (a[0] - px) * (b[1] - a[1])) / np.linalg.norm(b - a)
                for px, py, _ in mb.PILLARS
            ]
            assert min(dist) < 0.25  # the straight line passes (nearly) through a pillar
    finally:
        env.close()


def test_cameras_differ_and_see_motion():
    views = {}
    for cam in mb.CAMERAS:
        e = make_env("mobile_base", mode="data", camera=cam)
        e.reset(seed=0)
        e.set_pose([0.0, -0.8, 0.3])
        a = e.render()
        e.set_pose([0.1, -0.8, 0.3])
        views[cam] = (a, e.render())
        e.close()
        assert np.abs(views[cam][0].astype(int) - views[cam][1]).mean() > 2
    assert np.abs(views["front"][0].astype(int) - views["down"][0]).mean() > 10
    with pytest.raises(ValueError, match="camera"):
        make_env("mobile_base", camera="rear")


def test_data_drive_covers_the_room_and_is_deterministic(env):
    paths = []
    for _ in range(2):
        obs, info = env.reset(seed=3)
        pi = data_policy("mobile_base", seed=3)
        path = [info["odom"]]
        for _ in range(300):
            obs, _, _, _, info = env.step(pi(obs, info))
            path.append(info["odom"])
        paths.append(np.array(path))
    assert np.array_equal(paths[0], paths[1])
    p = paths[0]
    assert np.ptp(p[:, 0]) > 1.0 and np.ptp(p[:, 1]) > 1.0  # it crosses the room, not one corner
    assert np.abs(np.diff(p[:, :2], axis=0)).sum() > 3.0


def test_robot_bags_hold_only_a_robots_topics(tmp_path):
    bags = record_rollouts("mobile_base", "walk", 2, tmp_path / "b", topics="robot", max_steps=20)
    with AnyReader(bags) as r:
        conns = {c.topic: c.msgtype for c in r.connections}
        assert conns == {
            ROBOT_TOPICS["image"]: "sensor_msgs/msg/Image",
            ROBOT_TOPICS["action"]: "geometry_msgs/msg/Twist",
            ROBOT_TOPICS["odom"]: "nav_msgs/msg/Odometry",
        }
        imgs, odom = [], []
        for c, t, raw in r.messages():
            msg = r.deserialize(raw, c.msgtype)
            if c.topic == ROBOT_TOPICS["image"]:
                imgs.append((t, msg.encoding, msg.header.frame_id))
            elif c.topic == ROBOT_TOPICS["odom"]:
                q = msg.pose.pose.orientation
                odom.append((t, msg.pose.pose.position.x, msg.pose.pose.position.y, 2 * math.atan2(q.z, q.w)))
    assert len(imgs) == len(odom) == 42 and {e for _, e, _ in imgs} == {"bgr8"}
    stamps = np.array([t for t, *_ in imgs])
    gaps = np.diff(stamps) / 1e9
    assert np.sum(gaps > 1.0) == 1 and gaps.max() >= 2.0  # the two drives are apart in time
    # /odom is the env's pose at each image
    e = make_env("mobile_base", mode="data")
    s = episode_seed(0, 0)
    obs, info = e.reset(seed=s)
    e.close()
    assert np.allclose(odom[0][1:], info["odom"], atol=1e-5)
