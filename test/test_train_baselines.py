"""The model-free pixel baseline (training/baselines.py): stacked frames, DrQ's random shift, a real run."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from moejepa_ros.sim import make_env
from training.baselines import ChannelStack, run_model_free, shift_extractor
from training.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_channel_stack_shows_the_last_three_frames_oldest_first():
    env = ChannelStack(make_env("dmc:cartpole_swingup", seed=0))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 9) and env.observation_space.shape == (64, 64, 9)
    assert np.array_equal(obs[..., :3], obs[..., 6:])  # the first frame, repeated
    frames = [obs[..., 6:]]
    for _ in range(3):
        obs, *_ = env.step(np.ones(1, np.float32))
        frames.append(obs[..., 6:])
    assert np.array_equal(obs[..., :3], frames[1]) and np.array_equal(obs[..., 3:6], frames[2])
    assert not np.array_equal(frames[0], frames[3])  # the cart moved
    env.close()


def test_shift_augments_only_while_training():
    enc = shift_extractor(pad=4)(gym.spaces.Box(0, 1, (9, 64, 64), np.float32))
    x = torch.rand(8, 9, 64, 64)
    enc.train()
    shifted = enc.shift(x)
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    enc.eval()
    torch.testing.assert_close(enc(x), enc(x))  # deterministic at evaluation
    assert not torch.allclose(enc.train()(x), enc.eval()(x))


def test_sac_runs_from_stacked_pixels(tmp_path):
    cfg = load_config(
        ["dmc"],
        [
            "baseline.kind=sac",
            "baseline.rl_steps=24",
            "eval.max_episode_steps=20",
            "eval.closed_loop_episodes=1",
        ],
    )
    r = run_model_free(cfg, str(tmp_path))
    assert r["env_steps"] == 24 and r["frame_stack"] == 3 and np.isfinite(r["eval_return_mean"])
    assert json.loads((tmp_path / "result.json").read_text())["baseline"] == "sac"
