"""bench.experiments.reacher_hold on real MuJoCo reacher_easy: inverse kinematics puts the fingertip on the target
wherever the task placed it, the zero-torque agent then holds every step, a tiny untrained agent is measured on the
same episodes with its reward head's reading, and the summary is written."""

import json

import numpy as np
import pytest
import torch

from bench.experiments import reacher_hold
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.sim import make_env
from testing.models import TINY_DMC_PLANNER, tiny_dmc_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_starts_put_the_fingertip_on_the_target():
    env = make_env("dmc:reacher_easy")
    physics = env.unwrapped.physics
    limit = physics.named.model.jnt_range["wrist"][1]
    elbows = set()
    for seed in range(reacher_hold.FIRST_SEED, reacher_hold.FIRST_SEED + 30):
        frame = reacher_hold.start_on_target(env, seed)
        assert frame.shape == (64, 64, 3)
        assert physics.finger_to_target_dist() < 1e-4
        assert np.all(physics.data.qvel == 0)
        wrist = float(physics.named.data.qpos["wrist"][0])
        assert abs(wrist) <= limit and abs(physics.named.data.qpos["shoulder"][0]) <= np.pi
        elbows.add(int(np.sign(wrist)))
    assert elbows == {-1, 1}
    env.reset(seed=0)
    for x in (0.3, 0.03):  # beyond the two links of 0.12 m; closer than the wrist's limit lets it fold
        physics.named.model.geom_pos["target", ["x", "y"]] = [x, 0.0]
        physics.forward()
        with pytest.raises(ValueError, match=r"out of the arm's reach \(0.04\d-0.240 m\)"):
            reacher_hold.finger_on_target(physics)
    env.close()


def test_zero_torque_holds_and_an_agent_is_measured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "agent.safetensors"
    tiny_dmc_checkpoint(ckpt, 2)
    plan = TINY_DMC_PLANNER
    res = reacher_hold.main(["--checkpoint", "zero", str(ckpt), "--episodes", "3", "--steps", "6", "--set", *plan])
    zero, agent = res["agents"]
    # the reward head's reading by hand: the first frame repeated (at rest), zero torque, over the repeat of 4
    env, (model, _) = make_env("dmc:reacher_easy"), load_checkpoint(ckpt)
    frame = reacher_hold.start_on_target(env, reacher_hold.FIRST_SEED)
    with torch.no_grad():
        z = model.eval().encode(torch.as_tensor(np.stack([frame] * 3))[None])
        expected = float(model.reward(z, torch.zeros(1, 2))) / 4
    env.close()
    assert agent["episodes"][str(reacher_hold.FIRST_SEED)]["reward_seen"] == pytest.approx(expected, abs=1e-3)
    assert zero["held_steps_mean"] == 6 and zero["inside_at_end"] == 1 and zero["reward_per_step_mean"] == 4.0
    assert zero["reward_seen_mean"] is None and zero["prefers_staying"] is None
    assert agent["prefers_staying"] in (0.0, 0.333, 0.667, 1.0)
    assert set(agent["episodes"]) == {str(reacher_hold.FIRST_SEED + i) for i in range(3)}
    for e in agent["episodes"].values():
        assert 0 <= e["held_steps"] <= 6 and 0.0 <= e["reward_per_step"] <= 4.0
        assert isinstance(e["reward_seen"], float) and isinstance(e["prefers_staying"], bool)
        assert -180 <= e["target_angle_deg"] <= 180 and 0.05 <= e["target_radius"] <= 0.2  # the task's annulus
    assert res["held_steps_per_agent"] == [agent["held_steps_mean"]]  # the zero agent only checks the starts
    doc = json.loads((tmp_path / "out" / "bench" / "reacher_hold.json").read_text())
    assert doc["git_sha"] and doc["figures"]["held_steps_mean"] == agent["held_steps_mean"]
    # an agent that learnt on dm_control's own pixels is not measured on the fast ones
    suite = tmp_path / "suite.safetensors"
    tiny_dmc_checkpoint(suite, 2, training={"env_kwargs": {"render": "suite"}})
    with pytest.raises(ValueError, match="learnt on render='suite' pixels"):
        reacher_hold.main(["--checkpoint", str(suite), "--episodes", "1", "--steps", "2", "--set", *plan])
    with pytest.raises(SystemExit):  # longer than one episode of 250 env steps
        reacher_hold.main(["--checkpoint", "zero", "--steps", "251"])
