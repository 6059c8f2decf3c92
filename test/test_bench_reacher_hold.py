"""bench.experiments.reacher_hold on real MuJoCo reacher_easy: inverse kinematics puts the fingertip on the target
wherever the task placed it, the zero-torque agent then holds every step, a tiny untrained agent is measured on the
same episodes with its reward head's reading, and the summary is written."""

import json

import numpy as np
import pytest

from bench.experiments import reacher_hold
from moejepa_ros.model.checkpoint import save_checkpoint
from moejepa_ros.model.config import ModelConfig
from moejepa_ros.model.world_model import WorldModel
from moejepa_ros.sim import make_env

pytestmark = pytest.mark.usefixtures("one_thread")


def test_starts_put_the_fingertip_on_the_target():
    env = make_env("dmc:reacher_easy")
    physics = env.unwrapped.physics
    for seed in range(reacher_hold.FIRST_SEED, reacher_hold.FIRST_SEED + 30):
        frame = reacher_hold.start_on_target(env, seed)
        assert frame.shape == (64, 64, 3)
        assert physics.finger_to_target_dist() < 1e-4
        assert np.all(physics.data.qvel == 0)
    env.reset(seed=0)
    physics.named.model.geom_pos["target", "x"] = 0.3  # beyond the two links of 0.12 m
    physics.forward()
    with pytest.raises(ValueError, match="out of the arm's reach"):
        reacher_hold.finger_on_target(physics)
    env.close()


def test_zero_torque_holds_and_an_agent_is_measured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = ModelConfig(
        latent_dim=16, conv_channels=[8, 8, 8, 8], expert_hidden=16, head_hidden=16, stage1_hidden=16, num_q=2
    )
    cfg.action_dim = 2
    ckpt = tmp_path / "agent.safetensors"
    save_checkpoint(ckpt, WorldModel(cfg), {"action_low": [-1.0, -1.0], "action_high": [1.0, 1.0]})
    plan = [
        "plan.planner.samples=32",
        "plan.planner.iterations=1",
        "plan.planner.elites=4",
        "plan.planner.policy_prior_samples=4",
    ]
    res = reacher_hold.main(["--checkpoint", "zero", str(ckpt), "--episodes", "3", "--steps", "6", "--set", *plan])
    zero, agent = res["agents"]
    assert zero["held_steps_mean"] == 6 and zero["inside_at_end"] == 1 and zero["reward_per_step_mean"] == 4.0
    assert zero["reward_seen_mean"] is None
    assert set(agent["episodes"]) == {str(reacher_hold.FIRST_SEED + i) for i in range(3)}
    for e in agent["episodes"].values():
        assert 0 <= e["held_steps"] <= 6 and 0.0 <= e["reward_per_step"] <= 4.0
        assert isinstance(e["reward_seen"], float)
        assert -180 <= e["target_angle_deg"] <= 180 and 0.05 <= e["target_radius"] <= 0.2  # the task's annulus
    assert res["held_steps_per_agent"] == [agent["held_steps_mean"]]  # the zero agent only checks the starts
    doc = json.loads((tmp_path / "out" / "bench" / "reacher_hold.json").read_text())
    assert doc["git_sha"] and doc["figures"]["held_steps_mean"] == agent["held_steps_mean"]
