"""Cost: the learned energy C(z) of the predicted latents."""

from __future__ import annotations

from torch import Tensor

from .base import Objective, Option
from .rollout import Rollout


class CostObjective(Objective):
    """Learned energy C(z) of the predicted latents (keeps plans near familiar states)."""

    name = "cost"
    needs = ("cost",)
    enabled_default = False
    weight_default = 0.1
    options = {
        "every_step": Option(True, "sum C(z) over every imagined step (else the last latent only)"),
    }

    def __call__(self, r: Rollout) -> Tensor:
        if self.every_step:
            return r.model.cost(r.latents) @ r.discounts
        return r.model.cost(r.latents[:, -1])
