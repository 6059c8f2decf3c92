"""Loss terms of the world model; each returns a scalar tensor (named by the caller's terms dict)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .moe import softmax_last


def decay_weights(horizon: int, rho: float, device=None) -> torch.Tensor:
    """ρ^(j-1) for j = 1..H, normalised to sum to 1 (multi-step consistency weighting)."""
    w = rho ** torch.arange(horizon, dtype=torch.float32, device=device)
    return w / w.sum()


def jepa_latent_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||ẑ − sg(z̄)||² averaged over batch and dims; target is detached here whatever the caller did."""
    return F.mse_loss(pred, target.detach())


def multistep_latent_loss(
    pred: torch.Tensor, target: torch.Tensor, rho: float, per_window: bool = False
) -> torch.Tensor:
    """Σ_j ρ^(j-1)·MSE(ẑ_j, sg(z̄_j)) / Σ_j ρ^(j-1) over pred/target [B, H, D]: a scalar (the batch mean), or
    with `per_window` one value per window [B] (for importance-weighted batches; their mean is the scalar)."""
    w = decay_weights(pred.shape[1], rho, pred.device)
    per_step = (pred - target.detach()).square().mean(dim=2)  # [B, H]
    return (per_step * w).sum(1) if per_window else (per_step.mean(0) * w).sum()


def vicreg_variance(z: torch.Tensor, std_target: float, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance hinge: mean_d relu(γ − sqrt(Var_batch(z_d) + ε)) on z [B, D]."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(std_target - std).mean()


def vicreg_covariance(z: torch.Tensor) -> torch.Tensor:
    """VICReg covariance: Σ_{i≠j} Cov(z)_ij² / D on z [B, D] (decorrelates latent dims)."""
    B, D = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.t() @ zc) / max(B - 1, 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.square().sum() / D


def value_loss(v: torch.Tensor, rewards: torch.Tensor, v_boot: torch.Tensor, gamma: float) -> torch.Tensor:
    """V(z_t0) regressed on the n-step return Σ_j γ^j r_j + γ^H·sg(V(z_{t0+H})); rewards [B, H]."""
    H = rewards.shape[1]
    disc = gamma ** torch.arange(H, dtype=rewards.dtype, device=rewards.device)
    ret = (rewards * disc).sum(1) + (gamma**H) * v_boot.detach()
    return F.mse_loss(v, ret)


def cost_margin_loss(e_pos: torch.Tensor, e_neg: torch.Tensor, margin: float) -> torch.Tensor:
    """Energy-based contrast: pull C(visited) to 0, push C(negative) above `margin` (hinge)."""
    return e_pos.mean() + F.relu(margin - e_neg).mean()


def moe_aux_loss(aux: dict, load_balance: float, router_z: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted Switch load-balancing and router z-loss terms (returned separately for logging)."""
    return load_balance * aux["balance"], router_z * aux["z_loss"]


def cost_negatives(z: torch.Tensor, latent_norm: str, group: int, noise: float) -> torch.Tensor:
    """Negatives for the energy head from real latents z [B, D] (detached): two kinds, stacked.

    - shuffled: each group of `group` dims comes from a different random sample, so every group
      looks real but the combination was never visited;
    - perturbed: Gaussian noise in pre-normalisation space (log-probabilities for SimNorm),
      re-normalised, so negatives stay on the latent manifold's bounded set.
    """
    z = z.detach()
    B, D = z.shape
    g = z.reshape(B, D // group, group)
    perm = torch.argsort(torch.rand(B, D // group, device=z.device), dim=0)
    shuffled = torch.gather(g, 0, perm.unsqueeze(-1).expand(-1, -1, group)).reshape(B, D)
    if latent_norm == "simnorm":
        logits = torch.log(z.clamp_min(1e-6)).reshape(B, D // group, group)
        perturbed = softmax_last(logits + noise * 4.0 * torch.randn_like(logits)).reshape(B, D)
    else:
        perturbed = F.layer_norm(z + noise * torch.randn_like(z), (D,))
        shuffled = F.layer_norm(shuffled, (D,))
    return torch.cat([shuffled, perturbed], 0)
