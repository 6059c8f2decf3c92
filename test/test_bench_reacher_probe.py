"""bench.experiments.reacher_probe on real MuJoCo reacher_easy: the probe scores features that hold the state near
1 and noise near 0 on held-out rows, the random-torque episodes carry consistent labels, and a tiny agent is
probed and recorded on its own pixels only."""

import json

import numpy as np
import pytest

from bench.experiments import reacher_probe
from moejepa_ros.sim import make_env
from testing.models import tiny_dmc_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_probe_finds_what_the_features_hold_and_not_what_they_lack():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(1200, 2)).astype(np.float32)
    held = np.c_[np.tanh(y), rng.normal(size=(1200, 6))]  # a nonlinear view of the labels among noise
    r2 = reacher_probe.probe_r2(held, y, n_train=900, steps=800, n_val=150)
    assert np.all(r2 > 0.8)
    r2 = reacher_probe.probe_r2(rng.normal(size=(1200, 8)), y, n_train=900, steps=800, n_val=150)
    assert np.all(r2 < 0.1)


def test_random_episodes_label_the_state_after_each_step():
    env = make_env("dmc:reacher_easy")
    stacks, labels, rewards, actions, starts = reacher_probe.random_episodes(env, episodes=3, steps=6)
    env.close()
    assert starts.shape == (3, 3, 64, 64, 3) and np.all(starts[:, 0] == starts[:, 2])  # the first frame repeated
    np.testing.assert_array_equal(stacks[0, :2], starts[0, 1:])  # the first step's stack follows the start's
    assert stacks.shape == (18, 3, 64, 64, 3) and labels.shape == (18, len(reacher_probe.LABELS))
    assert actions.shape == (18, 2) and rewards.shape == (18,)
    np.testing.assert_allclose(labels[:, 4:6], labels[:, 0:2] - labels[:, 2:4], atol=1e-6)
    for ep in range(3):  # the target stays put within an episode, and each stack ends on its own step's frame
        rows = slice(6 * ep, 6 * ep + 6)
        assert np.ptp(labels[rows, 2:4], axis=0).max() < 1e-9
        np.testing.assert_array_equal(stacks[6 * ep + 1, 1], stacks[6 * ep, 2])
    assert np.all((actions == 0).all(1) | (np.abs(actions) <= 1).all(1))
    assert np.all(actions[0] == actions[4]) and len({tuple(a) for a in actions[:6]}) <= 2  # held for 5 steps


def test_the_reward_head_reads_the_latent_each_action_was_taken_from():
    import torch

    after = torch.arange(6.0).reshape(6, 1)  # 2 episodes x 3 steps: row i's latent is i
    starts = torch.tensor([[-1.0], [-2.0]])
    assert reacher_probe.before(after, starts, 3).reshape(-1).tolist() == [-1.0, 0.0, 1.0, -2.0, 3.0, 4.0]


def test_an_agent_is_probed_and_recorded_on_its_own_pixels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "agent.safetensors"
    tiny_dmc_checkpoint(ckpt, 2)
    res = reacher_probe.main(["--checkpoint", str(ckpt), "--episodes", "8", "--steps", "3", "--probe-steps", "20"])
    (agent,) = res["agents"]
    assert set(agent["r2"]) == set(reacher_probe.LABELS) == set(res["pixels_pca"])
    assert res["test_rows"] == 8 * 3 - round(0.7 * 8) * 3
    assert set(agent["reward_head"]) == {"recall", "false_alarms", "reward_steps"}
    doc = json.loads((tmp_path / "out" / "bench" / "reacher_probe.json").read_text())
    assert doc["git_sha"] and doc["figures"]["agents"][0]["r2"] == agent["r2"]
    big = tmp_path / "big.safetensors"
    tiny_dmc_checkpoint(big, 2, training={"env_kwargs": {"size": 84}})
    with pytest.raises(ValueError, match="learnt on size=84 pixels"):
        reacher_probe.main(["--checkpoint", str(big), "--episodes", "4", "--steps", "1", "--probe-steps", "1"])
