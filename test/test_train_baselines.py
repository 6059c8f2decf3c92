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


def sac_config(steps: int, every: int, *more: str):
    return load_config(
        ["dmc"],
        [
            *more,
            "baseline.kind=sac",
            f"baseline.rl_steps={steps}",
            f"baseline.eval_every={every}",
            "eval.max_episode_steps=10",
            "eval.closed_loop_episodes=2",
        ],
    )


def test_sac_evaluates_on_the_way_and_an_extended_run_resumes_where_it_stopped(tmp_path):
    from safetensors.torch import load_file

    r = run_model_free(sac_config(40, 20), str(tmp_path))
    assert [p["env_steps"] for p in r["curve"]] == [20, 40] and r["env_steps"] == 40
    assert all(len(p["returns"]) == 2 for p in r["curve"])
    assert len(np.load(tmp_path / "resume" / "replay_observations.npy")) == 40
    first = load_file(r["policy"])
    train_returns = json.loads((tmp_path / "resume" / "state.json").read_text())["extra"]["train_returns"]
    assert len(train_returns) == 4  # four 10-step episodes

    r2 = run_model_free(sac_config(60, 20), str(tmp_path))  # a larger budget: continues at 40, not from 0
    assert [p["env_steps"] for p in r2["curve"]] == [20, 40, 60] and r2["curve"][:2] == r["curve"]
    assert r2["train_seconds"] > r["train_seconds"]
    state = json.loads((tmp_path / "resume" / "state.json").read_text())
    assert state["num_timesteps"] == 60 and state["episodes"] == 6 and len(state["extra"]["train_returns"]) == 6
    assert len(np.load(tmp_path / "resume" / "replay_observations.npy")) == 60
    later = load_file(r2["policy"])
    assert any(not torch.equal(first[k], later[k]) for k in first)  # it trained on


def test_a_model_free_agent_comes_back_as_it_was_saved_even_from_a_killed_save(tmp_path):
    from stable_baselines3 import SAC

    from training.model_free_state import load_state, save_state

    def agent(buffer: int):
        env = ChannelStack(gym.wrappers.TimeLimit(make_env("dmc:cartpole_swingup", seed=0), 10))
        kw = dict(features_extractor_class=shift_extractor(), net_arch=[32])
        return SAC("CnnPolicy", env, buffer_size=buffer, learning_starts=5, batch_size=8, policy_kwargs=kw, seed=0)

    a = agent(30)
    a.learn(total_timesteps=35)  # the replay wrapped: 35 steps into 30 slots
    save_state(a, {"curve": [1]}, str(tmp_path / "resume"))
    (tmp_path / "resume").rename(tmp_path / "resume.old")  # killed between the two renames of a save

    b = agent(50)  # a bigger buffer (a larger budget) keeps all 30, oldest first
    assert load_state(b, str(tmp_path / "resume")) == {"curve": [1]}
    assert b.num_timesteps == 35 and b.replay_buffer.pos == 30 and not b.replay_buffer.full
    order = np.concatenate([a.replay_buffer.actions[5:], a.replay_buffer.actions[:5]])
    assert np.array_equal(b.replay_buffer.actions[:30], order)
    nxt = np.concatenate([a.replay_buffer.next_observations[5:], a.replay_buffer.next_observations[:5]])
    assert np.array_equal(b.replay_buffer.next_observations[:30], nxt)  # rebuilt from the rows kept
    rows = np.load(tmp_path / "resume.old" / "replay_next_rows.npy")
    assert 29 in rows and 2 <= len(rows) <= 4  # the episode ends in these 30 steps (at 10, 20, 30), and the last
    for k, v in a.policy.state_dict().items():
        assert torch.equal(v, b.policy.state_dict()[k]), k
    assert torch.equal(a.log_ent_coef, b.log_ent_coef)
    assert a.actor.optimizer.state_dict()["state"].keys() == b.actor.optimizer.state_dict()["state"].keys()

    c = agent(20)  # a smaller one keeps the newest 20
    load_state(c, str(tmp_path / "resume"))
    assert c.replay_buffer.full and c.replay_buffer.pos == 0
    assert np.array_equal(c.replay_buffer.actions, order[-20:])
    assert np.array_equal(c.replay_buffer.next_observations, nxt[-20:])
    assert load_state(agent(20), str(tmp_path / "nothing")) is None


def test_a_named_resume_without_a_model_free_state_is_refused_and_nothing_is_deleted(tmp_path):
    from training.train_state import ResumeError

    other = tmp_path / "step_100"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"keep")
    with pytest.raises(ResumeError, match="no model-free agent state"):
        run_model_free(sac_config(20, 10, f"run.resume={other}"), str(tmp_path / "run"))
    assert (other / "model.safetensors").read_bytes() == b"keep"
