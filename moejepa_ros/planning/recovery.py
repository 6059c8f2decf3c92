"""`StallRecovery`: when the goal distance stops falling, plans are charged for going where the robot has been.

A planner that follows a learned goal distance can settle in a pocket of it: beside a wall with the
goal just behind it, the distance says "nearly there" from every spot along the wall, and each
replan picks one of them again. Navigation stacks answer a stuck robot with recovery behaviours;
this is the latent-space one. Every replan records the start latent z0 and the goal distance
d(z0, g) (the goal objective's own metric). When d has not improved by `stall_progress` for
`stall_steps` replans, and the robot is still farther than `stall_min_distance` from the goal (at
the goal, staying put is right), every imagined latent z_t pays

    weight * sum_t gamma^t * sum_i exp(-1/2 ||z_t - v_i||^2 / sigma^2)

over the visited latents v_i (the last `memory` start latents), sigma = `stall_bandwidth` times the
median step between consecutive imagined latents (a stuck robot's own steps are ~0). Plans that
lead somewhere new win. The recovery is a burst, like a navigation stack's: it ends at the first
replan whose d is `stall_progress` below its value when progress was last made, or after
`stall_steps` replans; then the count starts again from the distance reached.
This is the tabu list of local search, kept in latent space and episodic: `clear()` forgets it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .progress import GoalProgress


class StallRecovery:
    """Visited latents, progress on the goal distance, and the revisit cost while stalled."""

    def __init__(
        self, steps: int, weight: float, bandwidth: float, progress: float, min_distance: float, memory: int = 128
    ):
        self.configure(steps, weight, bandwidth, progress, min_distance, memory)
        self.clear()

    def configure(
        self, steps: int, weight: float, bandwidth: float, progress: float, min_distance: float, memory: int = 128
    ) -> None:
        if steps < 0 or weight < 0 or bandwidth <= 0 or progress <= 0 or min_distance < 0 or memory < 2:
            raise ValueError(
                f"StallRecovery: need steps >= 0, weight >= 0, bandwidth > 0, progress > 0, "
                f"min_distance >= 0 and memory >= 2, got steps={steps}, weight={weight}, "
                f"bandwidth={bandwidth}, progress={progress}, min_distance={min_distance}, memory={memory}"
            )
        self.steps, self.weight, self.bandwidth = steps, weight, bandwidth
        self.progress, self.min_distance, self.memory = progress, min_distance, memory

    def clear(self) -> None:
        self.visited: Tensor | None = None
        self.goal = GoalProgress()
        self.active = False

    @property
    def since(self) -> int:
        """Replans since the goal distance last made progress."""
        return self.goal.since

    @torch.no_grad()
    def update(self, z0: Tensor, distance: float) -> bool:
        """Record this replan's start latent and goal distance; returns whether the recovery is on."""
        z = z0.reshape(1, -1).float()
        self.visited = z if self.visited is None else torch.cat([self.visited, z])[-self.memory :]
        if self.goal.since >= 2 * self.steps:
            self.goal.clear()  # a recovery burst ran its course: start over from the distance reached
        self.goal.update(distance, self.progress)
        self.active = (
            self.steps > 0
            and self.weight > 0
            and self.goal.stalled(self.steps, self.min_distance)
            and len(self.visited) >= 2
        )
        return self.active

    def cost(self, latents: Tensor, discounts: Tensor) -> Tensor:
        """Revisit cost [N] of imagined latents [N, T, D] (T = len(discounts))."""
        v = self.visited
        # the width follows the plans' own step: a robot stuck in place has visited steps of ~0
        moves = latents[:, 1:] - latents[:, :-1] if latents.shape[1] > 1 else v[1:] - v[:-1]
        step = moves.norm(dim=-1).median().clamp_min(1e-6)
        sq = torch.cdist(latents.reshape(-1, latents.shape[-1]), v).square()
        density = torch.exp(-0.5 * sq / (self.bandwidth * step) ** 2).sum(-1).reshape(latents.shape[:2])
        return self.weight * (density @ discounts)
