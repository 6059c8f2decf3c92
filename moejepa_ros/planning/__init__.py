"""Latent-space planners (torch only): objectives, CEM, MPPI, gradient MPC.

Entry points: `PlannerConfig`, `build_objectives`, `make_planner` -> `Planner.plan(z0, goal_z)` (+ `pose_goal`
for the goal metric `pose`).
"""

from .config import FIELD_HELP, METHODS, PlannerConfig
from .objectives import DEFAULT_OBJECTIVES, Objective, Objectives, PoseGoal, Rollout, build_objectives
from .planner import Planner, make_planner
from .problem import Plan, Problem
from .protocol import LatentModel, LinearLatentModel

__all__ = [
    "FIELD_HELP",
    "METHODS",
    "PlannerConfig",
    "DEFAULT_OBJECTIVES",
    "Objective",
    "Objectives",
    "PoseGoal",
    "Rollout",
    "build_objectives",
    "Planner",
    "make_planner",
    "Plan",
    "Problem",
    "LatentModel",
    "LinearLatentModel",
]
