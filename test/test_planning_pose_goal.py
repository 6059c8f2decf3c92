"""The goal objective's `pose` metric: the goal's pose (from the pair pose net) against where the motion model
says each candidate's commands end, on a tiny real world model with relative-pose parts."""

import math

import pytest
import torch

from moejepa_ros.planning import PoseGoal, Rollout, build_objectives, make_planner
from testing.models import HIGH, LOW, PLANNER, tiny_model

PARTS = {"channels": [8, 8, 8, 8], "hidden": 16, "motion_hidden": 16}
POSE = {"reward": {"enabled": False}, "goal": {"enabled": True, "metric": "pose"}}


def test_pose_cost_is_in_units_of_the_tolerances():
    goal = build_objectives(POSE)["goal"]
    assert (goal.xy_scale, goal.yaw_scale) == (0.1, 0.25)  # the mobile base's success tolerances
    here = torch.zeros(3)
    assert float(goal.pose_cost(here, torch.tensor([0.1, 0.0, 0.0]))) == pytest.approx(1.0)
    assert float(goal.pose_cost(here, torch.tensor([0.0, 0.0, -0.25]))) == pytest.approx(1.0)
    # heading wraps: pi - 0.05 and -pi + 0.05 are 0.1 rad apart
    a, b = torch.tensor([0.0, 0.0, math.pi - 0.05]), torch.tensor([0.0, 0.0, -math.pi + 0.05])
    assert float(goal.pose_cost(a, b)) == pytest.approx(0.1 / 0.25, abs=1e-4)


def test_the_candidate_whose_predicted_pose_is_the_goal_costs_least():
    torch.manual_seed(0)
    model = tiny_model(relative_pose=PARTS)
    history = torch.rand(4, 2) * 2 - 1
    actions = torch.rand(16, 24, 2) * 2 - 1
    with torch.no_grad():
        predicted = model.motion(history[None], actions)
    goal = build_objectives(POSE)["goal"]
    for k in (0, 7, 15):
        r = Rollout(model, torch.zeros(16), torch.zeros(16, 24, 16), actions, torch.ones(24))
        r.pose_goal = PoseGoal(predicted[k], history)
        with torch.no_grad():
            cost = goal(r)
        assert cost.shape == (16,) and int(cost.argmin()) == k and float(cost[k]) < 1e-4


def test_the_planner_plans_with_a_pose_goal_and_names_a_missing_one():
    model = tiny_model(relative_pose=PARTS)
    planner = make_planner({**PLANNER, "hold": 3}, model, POSE, LOW, HIGH)
    z = torch.zeros(16)
    pose_goal = PoseGoal(torch.tensor([0.5, 0.2, 0.3]), torch.zeros(4, 2))
    plan = planner.plan(z, z, pose_goal=pose_goal)
    assert plan.ok and plan.actions.shape == (9, 2)
    assert plan.rollout_steps == 0  # no objective reads latents: the latent rollout is skipped
    # the goal distance from where the robot stands: |(0.5, 0.2)| / 0.1 + 0.3 / 0.25
    assert plan.goal_distance == pytest.approx(math.hypot(0.5, 0.2) / 0.1 + 0.3 / 0.25, rel=1e-5)
    with_reward = make_planner({**PLANNER, "hold": 3}, model, {**POSE, "reward": {"enabled": True}}, LOW, HIGH)
    assert with_reward.plan(z, z, pose_goal=pose_goal).rollout_steps > 0
    with pytest.raises(ValueError, match="goal metric 'pose' needs the goal's pose"):
        planner.plan(z, z)
    with pytest.raises(ValueError, match="moejepa-train pose"):
        make_planner(PLANNER, tiny_model(), POSE, LOW, HIGH)
