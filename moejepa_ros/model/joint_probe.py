"""`JointProbe`: a robot arm's joint angles read from a latent, so a planner can score where the
predicted latents put the arm against where the goal image's latent puts it.

An MLP from z [..., D] to one (sin, cos) pair per joint (no wrap at ±pi to learn across); the angle is
atan2 of the pair. `moejepa-train joints` fits it on the bags' /joint_states (a label, never input)
with the rest of the world model frozen; the goal objective's metric `joints` plans with it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def angle_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| per joint, wrapped to [0, pi] (radians)."""
    return torch.remainder(a - b + math.pi, 2 * math.pi).sub(math.pi).abs()


class JointProbe(nn.Module):
    """z [..., D] → joint angles [..., J] (radians), through one (sin, cos) pair per joint."""

    def __init__(self, latent_dim: int, joints: int, hidden: int):
        super().__init__()
        self.joints = int(joints)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, 2 * joints)
        )

    def pairs(self, z: torch.Tensor) -> torch.Tensor:
        """The raw (sin, cos) outputs [..., J, 2] (what the fit regresses)."""
        return self.net(z).unflatten(-1, (self.joints, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        p = self.pairs(z)
        return torch.atan2(p[..., 0], p[..., 1])
