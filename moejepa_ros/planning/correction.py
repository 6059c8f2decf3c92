"""`OnlineCorrection`: the world model's own one-step errors in this episode, fed back into its rollouts.

A learned model is wrong in places its data covered thinly, and MPC keeps choosing the action
the model is most wrong about: an agent pushing into a wall the model lets it pass through
stays there, replan after replan, because every plan still predicts the passage. The planner
sees the error after every step: it predicted ẑ' = f(z, a) for the action it sent and then
encoded the real z'. `OnlineCorrection` keeps the last `capacity` transitions (z, a, e = z' − ẑ')
and corrects every imagined step by kernel regression on them (a Nadaraya–Watson estimate of
the residual, shrunk towards zero away from the data):

    f̃(z, a) = f(z, a) + Σ_i w_i e_i / (Σ_i w_i + prior),
    w_i = exp(−½ ‖z − z_i‖² / σ_z² − ½ ‖u − u_i‖² / σ_u²)

with u the action in normalised units ([-1, 1] over the bounds) and σ_z = `bandwidth` times the
median predicted step ‖ẑ' − z‖ in memory (so the width follows the latent's scale). Near
transitions the model got right it changes nothing; after a blocked push it predicts the block
for that push and its neighbours, and the planner turns to another action. This is the
residual-model idea of learning-based MPC (a GP on the model error, Hewing et al., 2020), kept
non-parametric and episodic: nothing is trained, it costs one predictor call per control step
and a [samples x memory] kernel per imagined step, and `clear()` forgets it (new goal, reset).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class OnlineCorrection:
    """Ring buffer of (z, u, e, predicted step) and the kernel correction they imply."""

    def __init__(
        self, capacity: int, bandwidth: float, action_bandwidth: float, prior: float, center: Tensor, half: Tensor
    ):
        self.configure(capacity, bandwidth, action_bandwidth, prior)
        self.center, self.half = center, half
        self.clear()

    def configure(self, capacity: int, bandwidth: float, action_bandwidth: float, prior: float) -> None:
        """New settings (live tuning); a new capacity keeps the newest transitions that fit."""
        if capacity < 0 or bandwidth <= 0 or action_bandwidth <= 0 or prior <= 0:
            raise ValueError(
                f"OnlineCorrection: need capacity >= 0 and positive widths and prior, got "
                f"capacity={capacity}, bandwidth={bandwidth}, action_bandwidth={action_bandwidth}, "
                f"prior={prior}"
            )
        self.capacity, self.bandwidth, self.action_bandwidth, self.prior = capacity, bandwidth, action_bandwidth, prior
        if getattr(self, "z", None) is not None and len(self.z) > capacity:
            keep = slice(len(self.z) - capacity, None)
            self.z, self.u, self.e, self.step = self.z[keep], self.u[keep], self.e[keep], self.step[keep]

    def clear(self) -> None:
        self.z = self.u = self.e = self.step = None

    def __len__(self) -> int:
        return 0 if self.z is None else len(self.z)

    @torch.no_grad()
    def observe(self, model: Any, z_prev: Tensor, action: Tensor, z_now: Tensor) -> Tensor:
        """Store the transition z_prev --action--> z_now; returns the model's error e = z_now − f(z_prev, a)."""
        if self.capacity == 0:
            return torch.zeros_like(z_now)
        z_prev, z_now = z_prev.reshape(1, -1).float(), z_now.reshape(1, -1).float()
        a = action.reshape(1, -1).float()
        pred = model.rollout(z_prev, a.reshape(1, 1, -1))[:, 0]
        e = z_now - pred
        row = (z_prev, (a - self.center) / self.half, e, (pred - z_prev).norm(dim=-1))
        if self.z is None:
            self.z, self.u, self.e, self.step = row
        else:
            self.z, self.u, self.e, self.step = (
                torch.cat([old, new])[-self.capacity :] for old, new in zip((self.z, self.u, self.e, self.step), row)
            )
        return e[0]

    def correction(self, z: Tensor, a: Tensor) -> Tensor:
        """Residual [M, D] for latents z[M, D] and actions a[M, A] (real units)."""
        sigma_z = self.bandwidth * self.step.median().clamp_min(1e-6)
        dz = torch.cdist(z, self.z).square() / sigma_z.square()
        du = torch.cdist((a - self.center) / self.half, self.u).square() / self.action_bandwidth**2
        w = torch.exp(-0.5 * (dz + du))  # [M, K]
        return (w @ self.e) / (w.sum(dim=1, keepdim=True) + self.prior)

    def wrap(self, model: Any) -> Any:
        """`model` itself while the memory is empty, else a view whose rollouts are corrected."""
        return model if len(self) == 0 else CorrectedModel(model, self)


class CorrectedModel:
    """A `LatentModel` view: `rollout` steps the model one action at a time and adds the
    correction; every other attribute (heads, latent_dim, cfg) is the wrapped model's."""

    def __init__(self, model: Any, correction: OnlineCorrection):
        self.model, self.correction = model, correction

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def rollout(self, z0: Tensor, actions: Tensor) -> Tensor:
        n, h, _ = actions.shape
        z = z0.expand(n, -1) if z0.shape[0] == 1 else z0
        out = []
        for t in range(h):
            a = actions[:, t]
            nxt = self.model.rollout(z, a.unsqueeze(1))[:, 0]
            z = nxt + self.correction.correction(z if z.stride(0) else z.contiguous(), a)
            out.append(z)
        return torch.stack(out, dim=1)
