"""Smoothness: prefer commands that change little from step to step."""

from __future__ import annotations

from torch import Tensor

from .base import Objective
from .rollout import Rollout


class SmoothnessObjective(Objective):
    """sum_t ||a_t - a_{t-1}||^2, a_{-1} = the previously executed action when known."""

    name = "smoothness"
    enabled_default = False
    weight_default = 0.01

    def needs_latents(self) -> bool:
        return False

    def __call__(self, r: Rollout) -> Tensor:
        a = r.actions
        c = (a[:, 1:] - a[:, :-1]).pow(2).sum((1, 2))
        if r.prev_action is not None:
            c = c + (a[:, 0] - r.prev_action.reshape(1, -1)).pow(2).sum(-1)
        return c
