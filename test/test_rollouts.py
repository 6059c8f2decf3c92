"""Rollouts -> rosbag2 -> training.data round trip, bag layout (topics, stamps, definitions)."""

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader

from moejepa_ros.codecs import image_to_rgb
from moejepa_ros.sim import RandomWalkPolicy, make_env
from training.data.bag_reader import read_bags
from training.data.topics import TopicConfig
from training.rollouts import TOPICS, episode_seed, record_rollouts


def ground_truth(episodes, seed, max_steps, mode, **walk):
    """Replay what record_rollouts does, straight from the env."""
    env = make_env("two_rooms", mode=mode)
    out = []
    for e in range(episodes):
        s = episode_seed(seed, e)
        obs, info = env.reset(seed=s)
        pi = RandomWalkPolicy(seed=s, **walk)
        frames, acts, rews, states = [obs], [], [], [info["state"]]
        for _ in range(max_steps):
            a = np.asarray(pi(obs, info), np.float32)
            obs, r, term, trunc, info = env.step(a)
            frames.append(obs), acts.append(a), rews.append(r), states.append(info["state"])
            if term or trunc:
                break
        out.append((np.stack(frames), np.stack(acts), np.asarray(rews, np.float32), np.stack(states)))
    return out


def check_round_trip(episodes, truth):
    assert len(episodes) == len(truth)
    for ep, (f, a, r, s) in zip(episodes, truth):
        assert ep.frames.shape == f.shape and np.array_equal(ep.frames, f)
        # actions[t] follows frames[t]; the terminal frame holds the last action (never used
        # for prediction: a window's last action is outside its horizon), reward 0
        assert np.array_equal(ep.actions[:-1], a) and np.array_equal(ep.actions[-1], a[-1])
        assert np.array_equal(ep.rewards[:-1], r) and ep.rewards[-1] == 0
        assert np.array_equal(ep.state, s)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_exact(tmp_path, storage):
    bags = record_rollouts(
        "two_rooms", "walk", 3, tmp_path, storage=storage, seed=5, max_steps=12, env_kwargs={"mode": "goal"}
    )
    assert len(bags) == 1
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert any(p.suffix == suffix for p in bags[0].iterdir())
    eps, summary = read_bags(bags)
    assert summary.episodes == 3 and not summary.dropped_frames and not summary.errors
    assert [e.index for e in eps] == [0, 1, 2]
    truth = ground_truth(3, 5, 12, "goal")
    assert any(np.any(r != 0) for _, _, r, _ in truth)  # goal mode: real rewards to compare
    check_round_trip(eps, truth)


def test_bag_layout_stamps_and_definitions(tmp_path):
    (bag,) = record_rollouts("two_rooms", "random", 2, tmp_path, max_steps=4)
    meta = (bag / "metadata.yaml").read_text()
    assert "  version: 9\n" in meta and "storage_identifier: mcap" in meta
    with Reader(bag) as r:
        conns = {c.topic: c for c in r.connections}
        assert set(conns) == set(TOPICS.values())
        assert conns["/camera/image_raw"].msgtype == "sensor_msgs/msg/Image"
        assert conns["/action"].msgtype == "std_msgs/msg/Float32MultiArray"
        assert conns["/reward"].msgtype == "std_msgs/msg/Float32"
        assert conns["/episode"].msgtype == "std_msgs/msg/Int32"
        assert conns["/state"].msgtype == "std_msgs/msg/Float32MultiArray"
        for c in conns.values():  # message definitions travel with the bag
            assert c.msgdef.data.strip() and c.digest.startswith("RIHS01_")
    # No default typestore: the reader must manage with the bag's own definitions.
    with AnyReader([bag]) as r:
        img = [c for c in r.connections if c.topic == "/camera/image_raw"]
        stamps = []
        for c, t, raw in r.messages(connections=img):
            m = r.deserialize(raw, c.msgtype)
            st = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
            assert st == t and m.header.frame_id == "camera" and m.encoding == "rgb8"
            assert image_to_rgb(m).shape == (64, 64, 3)
            stamps.append(st)
        ep = [c for c in r.connections if c.topic == "/episode"]
        markers = [(t, r.deserialize(raw, c.msgtype).data) for c, t, raw in r.messages(connections=ep)]
    dt = round(1e9 / 30)
    # 2 episodes x 5 frames, sim time continuous across them: one step of dt between all frames
    assert stamps == [i * dt for i in range(10)]
    assert markers == [(0, 0), (5 * dt, 1)]


def test_workers_do_not_change_the_data_and_twist_round_trips(tmp_path):
    one = record_rollouts("two_rooms", "walk", 4, tmp_path / "one", max_steps=6, seed=1)
    two = record_rollouts(
        "two_rooms", "walk", 4, tmp_path / "two", max_steps=6, seed=1, workers=2, action_msg="geometry_msgs/msg/Twist"
    )
    assert len(one) == 1 and len(two) == 2
    e1, _ = read_bags(one)
    e2, _ = read_bags(tmp_path / "two", TopicConfig(action_type="geometry_msgs/msg/Twist"))
    assert len(e1) == len(e2) == 4
    for a, b in zip(e1, e2):
        assert np.array_equal(a.frames, b.frames)
        np.testing.assert_allclose(a.actions, b.actions, rtol=0, atol=1e-6)  # Twist holds float64


def test_callable_policy_and_dmc(tmp_path):
    calls = []

    def policy(obs, info):
        calls.append(obs.shape)
        return np.array([0.25], np.float32)

    (bag,) = record_rollouts("dmc:cartpole_swingup", policy, 1, tmp_path, max_steps=3)
    (ep,), summ = read_bags(bag)
    assert ep.frames.shape == (4, 64, 64, 3) and ep.frames.dtype == np.uint8
    assert np.all(ep.actions == 0.25) and len(calls) == 3
    assert ep.state is not None and ep.state.dtype == np.float32


def test_policy_kwargs_reach_the_walk(tmp_path):
    """collect.policy_kwargs -> RandomWalkPolicy: cross_prob=0 (the no-door-crossing ablation) and
    cross_prob=1 record exactly their replays, and differ in how often episodes change rooms."""
    crossed = {}
    for p in (0.0, 1.0):
        (bag,) = record_rollouts(
            "two_rooms", "walk", 6, tmp_path / str(p), seed=3, max_steps=60, policy_kwargs={"cross_prob": p}
        )
        episodes, _ = read_bags(bag)
        check_round_trip(episodes, ground_truth(6, 3, 60, "data", cross_prob=p))
        # state = [x, y, wall_x, door_y]: the agent changed rooms when x moved across wall_x
        crossed[p] = sum(
            bool(np.any(np.sign(ep.state[:, 0] - ep.state[0, 2]) != np.sign(ep.state[0, 0] - ep.state[0, 2])))
            for ep in episodes
        )
    assert crossed[1.0] > crossed[0.0]
    with pytest.raises(ValueError, match="policy_kwargs"):
        record_rollouts("two_rooms", "walk", 1, tmp_path / "bad", policy_kwargs={"cross_probability": 0})
    with pytest.raises(ValueError, match="cross_prob"):
        record_rollouts("two_rooms", "walk", 1, tmp_path / "bad", policy_kwargs={"cross_prob": 2})
    with pytest.raises(ValueError, match="'walk' only"):
        record_rollouts("two_rooms", "random", 1, tmp_path / "bad", policy_kwargs={"cross_prob": 0})
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        record_rollouts("two_rooms", "random", 1, tmp_path, storage="rosbag1")
    with pytest.raises(ValueError, match="policy"):
        record_rollouts("two_rooms", "greedy", 1, tmp_path)
    with pytest.raises(ValueError, match="walk"):
        record_rollouts("dmc:cartpole_swingup", "walk", 1, tmp_path)
    record_rollouts("two_rooms", "random", 1, tmp_path / "x", max_steps=2)
    with pytest.raises(FileExistsError):
        record_rollouts("two_rooms", "random", 1, tmp_path / "x", max_steps=2)
