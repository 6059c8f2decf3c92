"""Reward: maximise the predicted discounted return (optionally bootstrapped by the value head)."""

from __future__ import annotations

from torch import Tensor

from .base import Objective, Option
from .rollout import Rollout


class RewardObjective(Objective):
    """-(sum_t gamma^t r(z_t, a_t) [+ gamma^H V(z_H)]): maximise predicted discounted return."""

    name = "reward"
    needs = ("reward",)
    enabled_default = True
    weight_default = 1.0
    options = {
        "terminal_value": Option(False, "add gamma^H V(z_H) from the value head (bootstraps the horizon)"),
    }

    def needs_heads(self) -> tuple[str, ...]:
        return ("reward", "value") if self.terminal_value else ("reward",)

    def __call__(self, r: Rollout) -> Tensor:
        rew = r.model.reward(r.states_before, r.actions)  # [N, H]
        ret = rew @ r.discounts
        if self.terminal_value:
            ret = ret + (r.discounts[-1] * r.gamma) * r.model.value(r.latents[:, -1])
        return -ret
