"""bench.experiments.dmc_planner_eval on real MuJoCo cartpole with two tiny untrained agents: each variant plans
every agent's evaluation episodes, the same variant twice gives the same returns, and a bad override fails first."""

import json

import pytest

from bench.experiments import dmc_planner_eval
from moejepa_ros.model.checkpoint import save_checkpoint
from moejepa_ros.model.config import ModelConfig
from moejepa_ros.model.world_model import WorldModel

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["plan.planner.samples=48", "plan.planner.iterations=2", "plan.planner.elites=4"]


def _agents(tmp_path):
    cfg = ModelConfig(
        latent_dim=16, conv_channels=[8, 8, 8, 8], expert_hidden=16, head_hidden=16, stage1_hidden=16, num_q=2
    )
    cfg.action_dim = 1
    paths = []
    for i in range(2):
        p = tmp_path / f"agent{i}.safetensors"
        save_checkpoint(p, WorldModel(cfg), {"action_low": [-1.0], "action_high": [1.0]})
        paths.append(str(p))
    return paths


def test_variants_plan_each_agent_and_are_summarised(tmp_path, monkeypatch):
    import training.evaluate

    monkeypatch.chdir(tmp_path)
    ckpts = _agents(tmp_path)
    seen, real = [], training.evaluate.closed_loop
    monkeypatch.setattr(training.evaluate, "closed_loop", lambda *a, **kw: seen.append(kw["seed"]) or real(*a, **kw))
    elite = ["plan.planner.execute=elite", "plan.planner.weighted_elites=true", "plan.planner.temperature=2"]
    res = dmc_planner_eval.main(
        ["--checkpoint", *ckpts, "--seeds", "0", "3", "--episodes", "2", "--steps", "4", "--set", *SMALL]
        + ["--variant", "best", "--variant", "elite", *elite, "--variant", "elite_again", *elite]
    )
    assert list(res["variants"]) == ["best", "elite", "elite_again"]
    assert res["variants"]["elite"]["overrides"] == elite and res["seeds"] == [0, 3]
    for v in res["variants"].values():
        assert set(v["per_seed"]) == {"0", "3"}
        for r in v["per_seed"].values():
            assert len(r["returns"]) == 2 and all(0.0 <= x <= 8.0 * 4 for x in r["returns"])  # reward <= 8 a step
    assert seen == [10_000, 13_000] * 3  # the training runs' evaluation seeds: EVAL_SEED + 1000 x seed (+ episode)
    same = res["variants"]["elite"]["per_seed"], res["variants"]["elite_again"]["per_seed"]
    assert [s["returns"] for s in same[0].values()] == [s["returns"] for s in same[1].values()]
    doc = json.loads((tmp_path / "out" / "bench" / "dmc_planner_eval.json").read_text())
    assert (
        doc["git_sha"] and doc["figures"]["variants"]["best"]["return_mean"] == res["variants"]["best"]["return_mean"]
    )


def test_a_bad_override_fails_before_any_episode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpts = _agents(tmp_path)
    with pytest.raises(Exception, match="execute"):
        dmc_planner_eval.main(["--checkpoint", *ckpts, "--variant", "bad", "plan.planner.execute=argmax"])
    assert not (tmp_path / "out").exists()


def test_an_agent_of_another_task_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpts = _agents(tmp_path)
    cfg = ModelConfig(latent_dim=16, conv_channels=[8, 8, 8, 8], expert_hidden=16, head_hidden=16, num_q=2)
    cfg.action_dim = 2
    other = tmp_path / "reacher.safetensors"
    meta = {"action_low": [-1.0] * 2, "action_high": [1.0] * 2, "training": {"env": "dmc:reacher_easy"}}
    save_checkpoint(other, WorldModel(cfg), meta)
    with pytest.raises(SystemExit):
        dmc_planner_eval.main(["--checkpoint", ckpts[0], str(other), "--variant", "config"])
    assert not (tmp_path / "out").exists()
