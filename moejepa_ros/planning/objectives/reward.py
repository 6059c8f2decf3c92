"""Reward: maximise the predicted discounted return (optionally bootstrapped by the value or Q heads)."""

from __future__ import annotations

from torch import Tensor

from .base import Objective, Option
from .rollout import Rollout


class RewardObjective(Objective):
    """-(sum_t gamma^t r(z_t, a_t) [+ gamma^H V(z_H) or gamma^H Q(z_H, pi(z_H))]): maximise predicted return.

    `terminal_q` is TD-MPC's bootstrap (Hansen et al. 2022, eq. 4): the mean of the Q ensemble at the last
    imagined latent, for the action the actor takes there.
    """

    name = "reward"
    needs = ("reward",)
    enabled_default = True
    weight_default = 1.0
    options = {
        "terminal_value": Option(False, "add gamma^H V(z_H) from the value head (bootstraps the horizon)"),
        "terminal_q": Option(
            False, "add gamma^H mean_i Q_i(z_H, pi(z_H)) from the TD-learned Q ensemble and the actor (TD-MPC)"
        ),
    }

    def needs_heads(self) -> tuple[str, ...]:
        return ("reward",) + (("value",) if self.terminal_value else ()) + (("q", "actor") if self.terminal_q else ())

    def __call__(self, r: Rollout) -> Tensor:
        rew = r.model.reward(r.states_before, r.actions)  # [N, H]
        ret = rew @ r.discounts
        if self.terminal_value:
            ret = ret + (r.discounts[-1] * r.gamma) * r.model.value(r.latents[:, -1])
        if self.terminal_q:
            z = r.latents[:, -1]
            ret = ret + (r.discounts[-1] * r.gamma) * r.model.q(z, r.to_actions(r.model.actor(z))).mean(0)
        return -ret
