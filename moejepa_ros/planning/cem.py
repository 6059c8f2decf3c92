"""Cross-entropy method (Rubinstein 1999; as MPC in PETS / TD-MPC): refit to the elite samples."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import PlannerConfig


def cem_update(u: Tensor, cost: Tensor, cfg: PlannerConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and std of the `cfg.elites` lowest-cost samples; stat = their mean cost."""
    elite_cost, idx = torch.topk(cost, cfg.elites, largest=False, sorted=False)
    elites = u.index_select(0, idx)
    mean = elites.mean(0)
    std = (elites - mean).pow_(2).mean(0).sqrt_()
    return mean, std, elite_cost.mean()
