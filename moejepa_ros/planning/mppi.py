"""Model predictive path integral control (Williams et al. 2017): softmax-weighted refit.

Weights w_i ∝ exp(-(c_i - min c) / temperature) over all samples; the mean and std are the
weighted moments (std adaptation as in TD-MPC's MPPI variant), floored by `min_std`.
"""

from __future__ import annotations

from torch import Tensor

from .cem import softmax_weights, weighted_moments
from .config import PlannerConfig


def mppi_update(u: Tensor, cost: Tensor, cfg: PlannerConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted mean / std of all samples; stat = the weighted mean cost."""
    # Inf costs (diverged rollouts) get weight 0; if all are inf, weights fall back to uniform.
    return weighted_moments(u, cost, softmax_weights(cost, cfg.temperature))
