"""`moejepa-train mbrl -c dmc` with `mbrl.loop=online` on real MuJoCo cartpole, tiny: seed episodes, a burst
of updates, one update per planner step, a Q-bootstrapped actor-seeded planner, and resume."""

import json
import os

import numpy as np
import pytest

from moejepa_ros.model.checkpoint import load_checkpoint
from testing.models import TINY_DMC_AGENT
from training.cli import main
from training.config import MBRLConfig
from training.mbrl import explore_std_at, planner_horizon_at

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TINY_DMC_AGENT + ["mbrl.seed_episodes=1", "mbrl.eval_every=1", "mbrl.eval_episodes=1"]


def run(capsys, out, *extra):
    rc = main(["mbrl", "-c", "dmc", f"run.out_dir={out}", *TINY, *extra])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0, lines
    return json.loads(lines[-1])


def test_online_loop_updates_every_step_and_resumes(tmp_path, capsys):
    r = run(capsys, tmp_path, "mbrl.iterations=1", "mbrl.explore_std=0.1", "mbrl.explore_std_final=-1")
    root = tmp_path / "mbrl"
    assert r["episodes"] == 2 and r["frames"] == 2 * 6 * 8  # cartpole's action repeat 8
    assert r["updates"] == 3 + 6  # the burst on the seed episode, then one per planner step
    state = json.loads((root / "agent" / "state.json").read_text())
    assert [e["seed"] for e in state["log"]] == [True, False]
    assert len(state["evals"]) == 2 and all(np.isfinite(e["return_mean"]) for e in state["evals"])
    assert sorted(os.listdir(root / "episodes")) == ["episode_00000.npz", "episode_00001.npz"]
    model, meta = load_checkpoint(root / "model.safetensors")
    assert "q" in model.heads and meta["action_low"] == [-1.0]
    assert meta["training"]["env_kwargs"] == {}  # the pixels it learnt on: the env's default render
    # a longer budget continues from the checkpoint: no episode is redone, updates keep counting
    # (and with TD-MPC's falling exploration noise: 0.5 at step 0, 0.1 from step 24 on)
    r2 = run(
        capsys,
        tmp_path,
        "mbrl.iterations=2",
        "mbrl.updates_per_step=0.5",
        "mbrl.explore_std=0.5",
        "mbrl.explore_std_final=0.1",
        "mbrl.explore_decay_steps=24",
    )
    state2 = json.loads((root / "agent" / "state.json").read_text())
    assert r2["episodes"] == 3 and r2["updates"] == 9 + 3
    assert state2["log"][:2] == state["log"] and state2["log"][2]["episode"] == 2
    assert state["log"][1]["explore_std"] == 0.1 and state2["log"][2]["explore_std"] == 0.3  # 12 of 24 steps
    assert len(os.listdir(root / "episodes")) == 3


def test_online_loop_needs_q_heads(tmp_path, capsys):
    assert main(["mbrl", "-c", "dmc", f"run.out_dir={tmp_path}", *TINY, "model.num_q=0"]) == 2
    assert "model.num_q=0" in capsys.readouterr().err


def test_explore_noise_falls_linearly_then_stays():
    m = MBRLConfig(explore_std=0.5, explore_std_final=0.05, explore_decay_steps=100)
    assert [round(explore_std_at(m, s), 4) for s in (0, 50, 100, 1000)] == [0.5, 0.275, 0.05, 0.05]
    assert explore_std_at(MBRLConfig(explore_std=0.2), 10**6) == 0.2  # -1: constant


def test_planning_horizon_ramps_as_td_mpc():
    m = MBRLConfig(horizon_ramp_steps=25000)  # TD-MPC's int(1 + 4 * step / 25000) for a horizon of 5
    assert [planner_horizon_at(m, 5, s) for s in (0, 6249, 6250, 12500, 25000, 10**6)] == [1, 1, 2, 3, 5, 5]
    assert planner_horizon_at(MBRLConfig(), 5, 0) == 5  # 0: the full horizon throughout


def test_the_ramped_horizon_plans_and_evaluates(tmp_path, capsys):
    # a seed episode of 6 steps, then planner episodes from steps 6 and 12: horizons 1 + 2 * 6/12 = 2, then 3
    run(capsys, tmp_path, "mbrl.iterations=2", "plan.planner.horizon=3", "mbrl.horizon_ramp_steps=12")
    state = json.loads((tmp_path / "mbrl" / "agent" / "state.json").read_text())
    assert [e.get("horizon") for e in state["log"]] == [None, 2, 3]
    # each evaluation (as its planner reports) at the horizon of the episode before it, as TD-MPC: 1 after the seed one
    assert [e["horizon"] for e in state["evals"]] == [1, 2, 3]
    # a resumed run picks the ramp up from its step count (episode 3 starts at step 18: capped at 3)
    run(capsys, tmp_path, "mbrl.iterations=3", "plan.planner.horizon=3", "mbrl.horizon_ramp_steps=36")
    state = json.loads((tmp_path / "mbrl" / "agent" / "state.json").read_text())
    assert state["log"][-1]["horizon"] == 2 and state["evals"][-1]["horizon"] == 2  # 1 + 2 * 18/36


def test_a_bad_explore_schedule_is_named(tmp_path, capsys):
    assert main(["mbrl", "-c", "dmc", f"run.out_dir={tmp_path}", *TINY, "mbrl.explore_std_final=-0.5"]) == 2
    assert "mbrl.explore_std_final" in capsys.readouterr().err


def test_a_prioritized_replay_keeps_its_priorities_in_the_agent(tmp_path, capsys):
    from safetensors.numpy import load_file

    run(capsys, tmp_path, "mbrl.iterations=1", "mbrl.priority_alpha=0.6")
    agent = tmp_path / "mbrl" / "agent" / "agent_state.safetensors"
    p = load_file(str(agent))["replay.priorities"]
    windows = 2 * (6 - 3 + 1)  # two 6-step episodes, windows of data.horizon 3 steps
    assert p.shape == (windows,) and len(np.unique(p)) > 1  # set from the TD errors of the sampled windows
    run(capsys, tmp_path, "mbrl.iterations=2", "mbrl.priority_alpha=0.6")  # resumes with them
    assert load_file(str(agent))["replay.priorities"].shape == (windows + 4,)
