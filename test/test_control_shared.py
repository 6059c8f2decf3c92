"""The Two-Rooms planning bench, MBRL and planner_node run one control step: the shipped classes."""

import inspect
from pathlib import Path

import numpy as np
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
