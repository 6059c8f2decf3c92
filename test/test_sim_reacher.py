"""The reacher arm (`dmc:reacher`): the goal protocol (start and goal 25 steps apart on a held-out random
trajectory, success within 0.05 rad per joint, wrapped), the hidden target, and its bags as an arm
records them (camera, /joint_commands, /joint_states) read back with the joint angles as state."""

import math

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from moejepa_ros.sim import data_policy, make_env
from moejepa_ros.sim import reacher as rc
from training.data.bag_reader import read_bags
from training.data.topics import TopicConfig
from training.rollouts import ARM_TOPICS, episode_seed, record_rollouts


@pytest.fixture(scope="module")
def env():
    e = make_env("dmc:reacher", mode="goal")
    yield e
    e.close()


def put(env, joints, velocity=(0.0, 0.0)):
    """Put the arm at `joints` (rad) with `velocity`; returns the frame."""
    p = env.physics
    with p.reset_context():
        p.named.data.qpos[list(rc.JOINT_NAMES)] = joints
        p.named.data.qvel[list(rc.JOINT_NAMES)] = velocity
    return env.render()


def test_goal_protocol_and_success(env):
    obs, info = env.reset(seed=3)
    again, info2 = env.reset(seed=3)
    assert np.array_equal(obs, again) and np.array_equal(info["goal_image"], info2["goal_image"])
    goal = info["goal_state"]
    assert info["distance"] == pytest.approx(float(rc.joint_error(info["joints"], goal).max()))
    assert not info["success"] and not np.array_equal(obs, info["goal_image"])
    # the goal image is the arm at the goal's angles (the target is not drawn, so nothing else differs)
    assert np.array_equal(put(env, goal), info["goal_image"])
    # at rest at the goal: reached; a wrapped shoulder angle counts as the same angle
    put(env, [goal[0] + 2 * math.pi, goal[1]])
    _, reward, term, trunc, info = env.step(np.zeros(2, np.float32))
    assert term and not trunc and info["success"] and reward > -rc.SUCCESS_RAD
    # every joint must be within the tolerance: the wrist 0.1 rad off is not a success
    env.reset(seed=3)
    put(env, [goal[0], goal[1] + 0.1])
    _, _, term, _, info = env.step(np.zeros(2, np.float32))
    assert not term and not info["success"] and info["distance"] == pytest.approx(0.1, abs=1e-3)


def test_episode_length_and_start_moves(env):
    obs, info = env.reset(seed=11)
    # the start is a mid-trajectory frame: the arm is moving
    assert np.abs(info["joint_velocity"]).max() > 0.0
    for t in range(rc.GOAL_STEPS):
        obs, _, term, trunc, info = env.step(np.zeros(2, np.float32))
        if term or trunc:
            break
    assert trunc or term
    assert t + 1 == rc.GOAL_STEPS or info["success"]


def test_target_is_not_drawn():
    e = make_env("dmc:reacher", mode="data")
    e.reset(seed=0)
    before = e.render()
    e.physics.named.model.geom_pos["target", :2] = [0.1, -0.1]
    e.physics.forward()
    assert np.array_equal(before, e.render())
    e.physics.named.model.geom_rgba["target", 3] = 1.0  # drawn, it would show
    assert not np.array_equal(before, e.render())
    e.close()


def test_bad_mode():
    with pytest.raises(ValueError, match="mode='nope'"):
        make_env("dmc:reacher", mode="nope")


def test_arm_bags_hold_joint_states_and_read_back(tmp_path):
    steps = 6
    (bag,) = record_rollouts("dmc:reacher", "walk", 2, tmp_path / "b", max_steps=steps, topics="arm")
    with AnyReader([bag]) as r:
        types = {c.topic: c.msgtype for c in r.connections}
        assert types == {
            ARM_TOPICS["image"]: "sensor_msgs/msg/Image",
            ARM_TOPICS["action"]: "std_msgs/msg/Float32MultiArray",
            ARM_TOPICS["joints"]: "sensor_msgs/msg/JointState",
        }
        js = [r.deserialize(raw, c.msgtype) for c, _, raw in r.messages() if c.topic == "/joint_states"]
    assert list(js[0].name) == list(rc.JOINT_NAMES) and len(js[0].velocity) == 2
    episodes, _ = read_bags([bag], TopicConfig.from_dict({"preset": "arm"}))
    assert len(episodes) == 2
    env = make_env("dmc:reacher", mode="data")
    for e, ep in enumerate(episodes):  # replay the random policy: the same frames and joint angles
        s = episode_seed(0, e)
        obs, info = env.reset(seed=s)
        walk = data_policy("dmc:reacher", seed=s)
        frames, joints = [obs], [info["joints"]]
        for _ in range(steps):
            obs, _, _, _, info = env.step(walk(obs, info))
            frames.append(obs), joints.append(info["joints"])
        assert np.array_equal(ep.frames, np.stack(frames))
        assert np.array_equal(ep.state, np.stack(joints))
        assert np.abs(ep.actions).max() <= 1.0 and ep.actions.shape == (steps + 1, 2)
    env.close()
