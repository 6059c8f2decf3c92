"""bench.experiments.reward_offline: the online loop's learner fitted on recorded episodes, its reward head read
on other episodes."""

import itertools
import json

import numpy as np
import pytest

from bench.experiments import reward_offline
from training.replay import EpisodeReplay


def test_auc_is_the_share_of_on_off_pairs_ranked_right():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    on = rng.random(40) < 0.3
    pairs = [(s, t) for s, t in itertools.product(scores[on], scores[~on])]
    brute = np.mean([1.0 if s > t else 0.5 if s == t else 0.0 for s, t in pairs])
    assert reward_offline.auc(scores, on) == pytest.approx(brute)
    assert reward_offline.auc(scores, np.zeros(40, bool)) is None


def record_run(root, episodes, steps, seed, reward_where):
    """A run directory as the online loop leaves it: mbrl/episodes/episode_*.npz of 64-px frames; the reward is 4
    (reacher's repeat) where `reward_where(frame)` holds."""
    rng = np.random.default_rng(seed)
    replay = EpisodeReplay(str(root / "mbrl" / "episodes"), 3, 3)
    for _ in range(episodes):
        frames = rng.integers(0, 50, (steps + 1, 64, 64, 3), dtype=np.uint8)
        bright = rng.random(steps + 1) < 0.4
        frames[bright, 20:44, 20:44] = 250
        rewards = np.array([4.0 if reward_where(b) else 0.0 for b in bright[1:]], np.float32)
        replay.add(frames, rng.uniform(-1, 1, (steps, 2)).astype(np.float32), rewards)
    return str(root)


def test_fits_on_some_runs_and_reads_the_head_on_others(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = record_run(tmp_path / "a", 2, 30, 0, lambda b: b)
    test = record_run(tmp_path / "b", 1, 30, 1, lambda b: b)
    res = reward_offline.main(
        ["--train", train, "--test", test, "--updates", "3", "--eval-every", "2", "--set", "data.batch_size=8"]
    )
    assert [p["updates"] for p in res["curve"]] == [2, 3]
    last = res["curve"][-1]
    assert last["test"]["steps"] == 30 and last["train"]["steps"] == 60
    assert last["train"]["on_steps"] == sum(
        int(np.load(f)["rewards"].astype(bool).sum())
        for f in sorted((tmp_path / "a" / "mbrl" / "episodes").glob("*.npz"))
    )
    assert 0.0 <= last["test"]["auc"] <= 1.0 and last["terms"]["reward"] > 0
    doc = json.loads((tmp_path / "out" / "bench" / "reward_offline.json").read_text())
    assert doc["figures"]["train_episodes"] == 2 and doc["figures"]["test_episodes"] == 1


def test_reads_trained_agents_on_the_same_episodes_and_poses(tmp_path, monkeypatch):
    from testing.models import tiny_dmc_checkpoint

    monkeypatch.chdir(tmp_path)
    test = record_run(tmp_path / "b", 1, 12, 1, lambda b: b)
    tiny_dmc_checkpoint(str(tmp_path / "a.safetensors"), 2, training={"reward_scale": 0.5})
    tiny_dmc_checkpoint(str(tmp_path / "suite.safetensors"), 2, training={"env_kwargs": {"render": "suite"}})
    res = reward_offline.main(["--checkpoint", str(tmp_path / "a.safetensors"), "--test", test, "--poses", "6"])
    (agent,) = res["agents"]
    assert agent["test"]["steps"] == 12 and agent["poses"]["steps"] == 6 and res["test_episodes"] == 1
    with pytest.raises(ValueError, match="suite"):  # an agent trained on other pixels is refused
        reward_offline.main(["--checkpoint", str(tmp_path / "suite.safetensors"), "--test", test])
    with pytest.raises(SystemExit):  # fit or read, not both
        reward_offline.main(["--checkpoint", str(tmp_path / "a.safetensors"), "--train", test, "--test", test])


def test_a_run_without_episodes_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no episodes under"):
        reward_offline.load_episodes([str(tmp_path)])


def test_reacher_poses_are_moving_arms_near_their_targets_on_and_off_them():
    p = reward_offline.reacher_poses(24, {})
    assert p["stacks"].shape == (24, 3, 64, 64, 3) and p["stacks"].dtype == np.uint8
    assert p["actions"].shape == (24, 2) and not p["actions"].any()
    assert set(np.unique(p["rewards"]).tolist()) == {0.0, 4.0}  # on (the repeat) and off both occur
    moved = [not np.array_equal(s[0], s[2]) for s in p["stacks"]]
    assert all(moved)  # the arm moves between the stack's frames
    again = reward_offline.reacher_poses(24, {})
    assert np.array_equal(again["stacks"], p["stacks"]) and np.array_equal(again["rewards"], p["rewards"])
    # the points are drawn within twice the rewarded radius (the target's plus the fingertip's)
    from moejepa_ros.sim import make_env

    env = make_env("dmc:reacher_easy")
    env.reset(seed=reward_offline.FIRST_POSE_SEED)
    physics = env.unwrapped.physics
    assert physics.named.model.geom_size[["target", "finger"], 0].sum() == pytest.approx(reward_offline.POSE_REACH / 2)
    env.close()
