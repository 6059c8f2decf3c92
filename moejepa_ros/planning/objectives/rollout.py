"""`Rollout`: one batch of imagined trajectories, the input every objective scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class PoseGoal:
    """The goal in the robot's frame, for the goal objective's `pose` metric: `pose[3]` = (dx, dy, dψ)
    of the goal image (the model's pair pose net, once per replan) and `history[K, A]` = the last K
    executed commands (real units, oldest first), what the motion model continues from."""

    pose: Tensor
    history: Tensor


@dataclass
class Rollout:
    """One batch of imagined trajectories, what every objective sees.

    `latents[N, H, D]` are z_1..z_H after `actions[N, H, A]` (real units) from `z0[D]` (None when no
    enabled objective reads latents, e.g. the goal metric `pose` alone: the planner skips that rollout);
    `discounts[H]` = gamma^t (t = 0..H-1); `prev_action[A]` is the last executed action (or None);
    `pose_goal` the goal in the robot's frame (the goal metric `pose`; None otherwise); `to_actions` maps
    normalised [-1, 1] actions (the actor's) to command units.
    """

    model: Any
    z0: Tensor
    latents: Tensor | None
    actions: Tensor
    discounts: Tensor
    gamma: float = 1.0
    goal_z: Tensor | None = None
    prev_action: Tensor | None = None
    pose_goal: PoseGoal | None = None
    to_actions: Callable[[Tensor], Tensor] | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def states_before(self) -> Tensor:
        """z_0..z_{H-1}: the latent each action is taken in (reward(z_t, a_t))."""
        if "before" not in self._cache:
            n = self.latents.shape[0]
            first = self.z0.reshape(1, 1, -1).expand(n, 1, -1)
            self._cache["before"] = torch.cat([first, self.latents[:, :-1]], 1)
        return self._cache["before"]
