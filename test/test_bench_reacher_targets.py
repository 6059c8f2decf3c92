"""bench.experiments.reacher_targets on real MuJoCo reacher_easy: a joint-space PD controller that knows where the
target is reaches and keeps every target, zero torque reaches none, the bands split by the target's distance, and
a tiny agent is measured and recorded on its own pixels only."""

import json

import numpy as np
import pytest

from bench.experiments import reacher_hold, reacher_targets
from moejepa_ros.sim import make_env
from testing.models import TINY_DMC_PLANNER, tiny_dmc_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def pd_to_target(physics):
    """Torques towards the joint angles that put the fingertip on the target (the state, not the pixels)."""

    def act(obs, info):
        q, qd = physics.data.qpos[:2], physics.data.qvel[:2]
        try:
            goal = reacher_hold.finger_on_target(physics, elbow=1)
        except ValueError:  # beyond the wrist's limit with this elbow
            goal = reacher_hold.finger_on_target(physics, elbow=-1)
        err = np.array([np.remainder(goal[0] - q[0] + np.pi, 2 * np.pi) - np.pi, goal[1] - q[1]])
        return np.clip(5.0 * err - 0.5 * qd, -1.0, 1.0).astype(np.float32)

    return act


def test_a_controller_that_knows_the_target_reaches_and_keeps_it_zero_torque_does_not():
    env = make_env("dmc:reacher_easy")
    seeds = range(reacher_hold.FIRST_SEED, reacher_hold.FIRST_SEED + 8)
    pd = [reacher_targets.task_episode(env, pd_to_target(env.unwrapped.physics), s, 40) for s in seeds]
    zero = [reacher_targets.task_episode(env, reacher_hold.zero_policy, s, 40) for s in seeds]
    env.close()
    for e, z in zip(pd, zero):
        assert e["first_reward"] is not None and e["first_reward"] <= 12 and e["kept"] >= 0.75
        assert e["target_radius"] == z["target_radius"] and e["target_angle_deg"] == z["target_angle_deg"]
        assert z["return"] == 0 and z["first_reward"] is None and z["kept"] is None
        assert 0.05 <= e["target_radius"] <= 0.2  # the task's annulus
    s = reacher_targets.summary(pd)
    assert sum(b["episodes"] for b in s["bands"].values()) == 8 and len(s["bands"]) >= 2
    assert all(b["reached"] == 1.0 and b["kept_mean"] >= 0.9 for b in s["bands"].values())
    assert s["return_mean"] == pytest.approx(np.mean([e["return"] for e in pd]), abs=0.1)
    assert all(b["reached"] == 0.0 and b["kept_mean"] is None for b in reacher_targets.summary(zero)["bands"].values())


def test_bands_cover_the_annulus():
    assert [reacher_targets.band_of(r) for r in (0.05, 0.0999, 0.1, 0.15, 0.2)] == [
        "0.05-0.10",
        "0.05-0.10",
        "0.10-0.15",
        "0.15-0.20",
        "0.15-0.20",
    ]


def test_an_agent_is_measured_and_recorded_on_its_own_pixels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "agent.safetensors"
    tiny_dmc_checkpoint(ckpt, 2)
    res = reacher_targets.main(
        ["--checkpoint", str(ckpt), "--episodes", "2", "--steps", "4", "--set", *TINY_DMC_PLANNER]
    )
    (agent,) = res["agents"]
    assert set(agent["episodes"]) == {str(reacher_hold.FIRST_SEED + i) for i in range(2)}
    for e in agent["episodes"].values():
        assert 0.0 <= e["return"] <= 16.0  # 4 env steps of at most the repeat of 4
    assert res["return_per_agent"] == [agent["return_mean"]] and res["steps"] == 4
    doc = json.loads((tmp_path / "out" / "bench" / "reacher_targets.json").read_text())
    assert doc["git_sha"] and doc["figures"]["bands"] == res["bands"]
    big = tmp_path / "big.safetensors"  # learnt on 84-px frames: refused on the default 64
    tiny_dmc_checkpoint(big, 2, training={"env_kwargs": {"size": 84}})
    with pytest.raises(ValueError, match="learnt on size=84 pixels"):
        reacher_targets.main(["--checkpoint", str(big), "--episodes", "1", "--steps", "2", "--set", *TINY_DMC_PLANNER])
    with pytest.raises(SystemExit):  # longer than one episode of 250 env steps
        reacher_targets.main(["--checkpoint", str(ckpt), "--steps", "251"])
