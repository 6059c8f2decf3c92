"""Goal: distance of the predicted latents to the goal latent (e.g. a goal image's embedding)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Objective, Option
from .rollout import Rollout

GOAL_METRICS = ("l2", "sq_l2", "l1", "cosine", "learned")


class GoalObjective(Objective):
    """Distance of predicted latents to the goal latent (e.g. a goal image's embedding).

    `learned` uses the model's goal-distance head (steps to go, aware of walls; `moejepa-train goal`
    trains it); `every_step` sums over z_1..z_H instead of scoring the last latent only.
    """

    name = "goal"
    needs_goal = True
    enabled_default = False
    weight_default = 1.0
    options = {
        "metric": Option(
            "l2",
            "goal distance: latent l2 | sq_l2 | l1 | cosine, or learned (the checkpoint's "
            "goal-distance head from `moejepa-train goal`, aware of walls)",
            choices=GOAL_METRICS,
        ),
        "every_step": Option(False, "sum the goal distance over every imagined step (else the last one only)"),
    }

    def needs_heads(self) -> tuple[str, ...]:
        return ("goal_distance",) if self.metric == "learned" else ()

    def check(self, model: Any) -> None:
        try:
            super().check(model)
        except ValueError as e:
            raise ValueError(
                f"{e} (metric=learned: train the head with `moejepa-train goal`, or plan with metric=l2)"
            ) from None

    def distance(self, z: Tensor, g: Tensor, model: Any = None) -> Tensor:
        if self.metric == "learned":
            return model.goal_distance(z, g)
        if self.metric == "cosine":
            return 1.0 - torch.nn.functional.cosine_similarity(z, g.expand_as(z), dim=-1)
        d = z - g
        if self.metric == "l1":
            return d.abs().sum(-1)
        sq = d.pow(2).sum(-1)
        return sq if self.metric == "sq_l2" else sq.clamp_min(1e-12).sqrt()

    def __call__(self, r: Rollout) -> Tensor:
        if r.goal_z is None:
            raise ValueError("objective 'goal' is enabled but plan() got no goal_z")
        g = r.goal_z.reshape(-1)
        if g.shape[0] != r.latents.shape[-1]:
            raise ValueError(f"goal_z has {g.shape[0]} dims, the model's latent has {r.latents.shape[-1]}")
        if self.every_step:
            return self.distance(r.latents, g, r.model) @ r.discounts
        return self.distance(r.latents[:, -1], g, r.model)
