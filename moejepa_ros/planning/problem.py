"""`Problem` (one planning call: model, objectives, bounds, start latent) and its `Plan` result.

Planners search normalised action sequences u in [-1, 1]^{H x A}; `Problem.evaluate` maps
them onto the real bounds, imagines the rollouts in one batched `model.rollout` call from the
shared start latent (skipped when no enabled objective reads latents, e.g. the goal metric `pose`
alone), and scores them with the objectives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .objectives import Objectives, PoseGoal, Rollout


@dataclass
class Plan:
    """A planner's answer: `actions[H, A]` (command units), `first_action[A]` to execute now."""

    actions: Tensor
    first_action: Tensor
    predicted_cost: float
    stats: list[dict[str, float]] = field(default_factory=list)
    elapsed_ms: float = 0.0
    method: str = ""
    rollout_steps: int = 0  # latent steps imagined (samples x horizon summed over calls)
    goal_distance: float = math.nan  # d(z0, goal) by the goal objective's metric; NaN without a goal

    @property
    def ok(self) -> bool:
        """False when the plan is unusable (non-finite cost or actions): publish a safe command."""
        return math.isfinite(self.predicted_cost) and bool(torch.isfinite(self.actions).all())


class Problem:
    """Scores normalised action sequences for one start latent (and goal / previous action)."""

    def __init__(
        self,
        model: Any,
        objectives: Objectives,
        center: Tensor,
        half_range: Tensor,
        z0: Tensor,
        gamma: float,
        horizon: int,
        goal_z: Tensor | None = None,
        prev_action: Tensor | None = None,
        discounts: Tensor | None = None,
        hold: int = 1,
        extra_cost: Callable[[Tensor, Tensor], Tensor] | None = None,
        pose_goal: PoseGoal | None = None,
    ):
        self.model = model
        self.objectives = objectives
        self.center = center
        self.half_range = half_range
        self.z0 = z0
        self.gamma = float(gamma)
        self.goal_z = goal_z
        self.prev_action = prev_action
        self.pose_goal = pose_goal  # the goal in the robot's frame (goal metric `pose`)
        self.hold = int(hold)
        if discounts is None:
            discounts = gamma ** torch.arange(horizon * self.hold, dtype=z0.dtype, device=z0.device)
        self.discounts = discounts
        self.extra_cost = extra_cost  # (latents [N, T, D], discounts [T]) -> [N], e.g. StallRecovery.cost
        self.rollout_steps = 0

    def to_actions(self, u: Tensor) -> Tensor:
        """Normalised [-1, 1] -> command units (affine, so convexity in u is kept)."""
        return torch.addcmul(self.center, u, self.half_range)

    def held(self, actions: Tensor) -> Tensor:
        """[..., H, A] -> [..., H*hold, A]: each action repeated `hold` times (piecewise-constant)."""
        return actions if self.hold == 1 else actions.repeat_interleave(self.hold, dim=-2)

    def rollout(self, u: Tensor) -> Rollout:
        n = u.shape[0]
        actions = self.held(self.to_actions(u))
        latents = None
        if self.extra_cost is not None or self.objectives.needs_latents:
            latents = self.model.rollout(self.z0.unsqueeze(0).expand(n, -1), actions)
            self.rollout_steps += n * actions.shape[1]
        return Rollout(
            model=self.model,
            z0=self.z0,
            latents=latents,
            actions=actions,
            discounts=self.discounts,
            gamma=self.gamma,
            goal_z=self.goal_z,
            prev_action=self.prev_action,
            pose_goal=self.pose_goal,
            to_actions=self.to_actions,
        )

    def evaluate(self, u: Tensor) -> Tensor:
        """cost[N] of u[N, H, A]; differentiable unless called under no_grad / inference_mode."""
        r = self.rollout(u)
        cost = self.objectives(r)
        if self.extra_cost is not None:
            cost = cost + self.extra_cost(r.latents, r.discounts)
        if cost.shape != (u.shape[0],):
            raise ValueError(f"objectives returned shape {tuple(cost.shape)}, expected [{u.shape[0]}]")
        return cost
