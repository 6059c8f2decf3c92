"""Magnitude: prefer small commands."""

from __future__ import annotations

from torch import Tensor

from .base import Objective
from .rollout import Rollout


class MagnitudeObjective(Objective):
    """sum_t ||a_t||^2 in command units: prefer small efforts."""

    name = "magnitude"
    enabled_default = False
    weight_default = 0.01

    def needs_latents(self) -> bool:
        return False

    def __call__(self, r: Rollout) -> Tensor:
        return r.actions.pow(2).sum((1, 2))
