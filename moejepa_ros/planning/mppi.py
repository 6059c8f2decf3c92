"""Model predictive path integral control (Williams et al. 2017): softmax-weighted refit.

Weights w_i ∝ exp(-(c_i - min c) / temperature) over all samples; the mean and std are the
weighted moments (std adaptation as in TD-MPC's MPPI variant), floored by `min_std`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cem import elite_weights
from .config import PlannerConfig


def mppi_update(u: Tensor, cost: Tensor, cfg: PlannerConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted mean / std of all samples; stat = the weighted mean cost."""
    # Inf costs (diverged rollouts) get weight 0; if all are inf, weights fall back to uniform.
    w = elite_weights(cost, cfg.temperature)
    finite = torch.isfinite(cost)
    mean = torch.einsum("n,nha->ha", w, u)
    var = torch.einsum("n,nha->ha", w, (u - mean).pow_(2))
    fit = (w * torch.where(finite, cost, 0.0)).sum()
    return mean, var.sqrt_(), fit
