"""Cross-entropy method (Rubinstein 1999; as MPC in PETS / TD-MPC): refit to the elite samples."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import PlannerConfig


def cem_update(u: Tensor, cost: Tensor, cfg: PlannerConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and std of the `cfg.elites` lowest-cost samples; stat = their mean cost.

    With `cfg.weighted_elites` the moments are weighted by exp(-(c - min c) / temperature), as in
    TD-MPC's planner (Hansen et al. 2022), where the best elites pull the mean harder.
    """
    elite_cost, idx = torch.topk(cost, cfg.elites, largest=False, sorted=False)
    elites = u.index_select(0, idx)
    if cfg.weighted_elites:
        return weighted_moments(elites, elite_cost, softmax_weights(elite_cost, cfg.temperature))
    mean = elites.mean(0)
    std = (elites - mean).pow_(2).mean(0).sqrt_()
    return mean, std, elite_cost.mean()


def softmax_weights(cost: Tensor, temperature: float) -> Tensor:
    """Softmax of -(cost - min cost) / temperature; inf costs weigh 0, all-inf falls back to uniform."""
    w = torch.softmax((cost.min() - cost) / temperature, 0)
    return torch.nan_to_num(w, nan=1.0 / cost.shape[0])


def weighted_moments(u: Tensor, cost: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and std of samples `u` under weights `w`; stat = the weighted cost of the finite ones."""
    mean = torch.einsum("n,nha->ha", w, u)
    var = torch.einsum("n,nha->ha", w, (u - mean).pow_(2))
    return mean, var.sqrt_(), (w * torch.where(torch.isfinite(cost), cost, 0.0)).sum()
