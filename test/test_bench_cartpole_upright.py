"""bench.experiments.cartpole_upright on real MuJoCo cartpole with two tiny untrained agents: every episode starts
with the pole up (it cannot fall 30 degrees within the first step) and the summary is written."""

import json

import pytest

from bench.experiments import cartpole_upright
from testing.models import TINY_DMC_PLANNER, tiny_dmc_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_episodes_start_upright_and_are_summarised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "agent.safetensors"
    tiny_dmc_checkpoint(ckpt, 1)
    plan = TINY_DMC_PLANNER
    other = tmp_path / "agent1.safetensors"
    tiny_dmc_checkpoint(other, 1)
    res = cartpole_upright.main(["--checkpoint", str(ckpt), str(other), "--steps", "5", "--set", *plan])
    assert [g["checkpoint"] for g in res["agents"]] == [str(ckpt), str(other)]
    for g in res["agents"]:
        assert set(g["episodes"]) == {"-6.0", "-4.0", "-2.0", "0.0", "2.0", "4.0", "6.0"}
        for e in g["episodes"].values():
            assert 1 <= e["held_steps"] <= 5  # started up: still up after the first step
            assert 0.0 < e["reward_per_step"] <= 8.0
    per = res["held_steps_per_agent"]
    assert len(per) == 2 and abs(res["held_steps_mean"] - sum(per) / 2) < 0.011  # equal episodes per agent
    doc = json.loads((tmp_path / "out" / "bench" / "cartpole_upright.json").read_text())
    assert doc["git_sha"] and doc["figures"]["held_steps_mean"] == res["held_steps_mean"]
