"""The Two-Rooms planning bench, MBRL and planner_node run one control step: the shipped classes."""

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from moejepa_ros import control
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.sim.two_rooms import TwoRoomsEnv


def test_bench_agent_is_the_shipped_control_step():
    from bench.experiments import two_rooms_planning as bench

    model, meta = load_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints" / "two_rooms.safetensors")
    settings = {**bench.BASE, **bench.METHODS["cem"]}
    agent = bench.make_agent(model.eval(), meta, settings, bench.OBJECTIVES)
    assert type(agent) is control.PlannerPolicy
    assert type(agent.controller) is control.LatentController
    # the bench defines no control step of its own
    own = [n for n, c in inspect.getmembers(bench, inspect.isclass) if c.__module__ == bench.__name__]
    assert own == [], own
    # one episode step: the bench's agent clamps into the checkpoint's bounds, as the node does
    obs, info = TwoRoomsEnv(mode="goal").reset(seed=1000)
    torch.manual_seed(0)
    a = agent(obs, info)
    assert a.shape == (2,) and np.all(np.isfinite(a))
    assert np.all(a >= np.asarray(meta["action_low"])) and np.all(a <= np.asarray(meta["action_high"]))
    assert agent.last_decision is not None and agent.last_decision.level == control.OK


def test_planner_node_and_training_use_the_same_classes():
    from moejepa_ros.ros import planner_node
    from training import distill, mbrl

    assert planner_node.LatentController is control.LatentController
    assert planner_node.FrameStack is control.FrameStack
    assert planner_node.preprocess is control.preprocess
    assert distill.LatentController is control.LatentController  # labels through LatentController.decide
    assert "from moejepa_ros.control import PlannerPolicy" in inspect.getsource(mbrl)  # imported where used


def test_bench_scores_pldm_protocol_and_keeps_each_replans_time():
    from bench.experiments import two_rooms_planning as bench

    model, meta = load_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints" / "two_rooms.safetensors")
    agent = bench.make_agent(model.eval(), meta, {**bench.BASE, **bench.METHODS["cem"]}, bench.OBJECTIVES)
    torch.manual_seed(0)
    r = bench.episode(agent, 7, max_steps=2, env="two_rooms_pldm")
    assert r["steps"] == 2 and len(r["replan_ms"]) == 2  # 2 steps of <= 2.45 px cannot reach the other room
    assert r["success"] is False and r["start_distance"] >= 7.2  # start and goal rooms differ


def test_bench_training_resumes_past_finished_steps(tmp_path):
    from bench.experiments import two_rooms_planning as bench

    (tmp_path / "recipe_done").mkdir()
    for i in range(len(bench.DEMO.steps)):
        (tmp_path / "recipe_done" / str(i)).touch()
    # every step marked finished: nothing runs (a real step would fail here: no data), the export is returned
    assert bench.train(tmp_path, False, None, env="two_rooms_pldm", seed=3) == tmp_path / bench.DEMO.export
    # the first six steps end with the goal head's export, which is then the model
    assert bench.train(tmp_path, False, None, "two_rooms_pldm", 3, 6) == tmp_path / "goal/export/model.safetensors"
    with pytest.raises(ValueError, match="recipe_steps=5"):
        bench.train(tmp_path, False, None, "two_rooms_pldm", 3, 5)
