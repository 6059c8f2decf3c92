"""Prediction heads on latents: reward r(z,a), value V(z), action value Q(z,a) (an ensemble),
cost/energy C(z), actor π(z) and the goal distance d(z, g)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .two_hot import Regression


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """Two hidden layers with LayerNorm + SiLU (TD-MPC2-style small MLP head)."""
    return nn.Sequential(
        nn.Linear(d_in, hidden),
        nn.LayerNorm(hidden),
        nn.SiLU(),
        nn.Linear(hidden, hidden),
        nn.LayerNorm(hidden),
        nn.SiLU(),
        nn.Linear(hidden, d_out),
    )


def mlp_forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`net(x)` for an `mlp`; without grad, SiLU runs in place and the module calls are skipped
    (planning scores thousands of latents per plan, where these small costs add up)."""
    if torch.is_grad_enabled() or len(net) != 7:
        return net(x)
    l1, n1, _, l2, n2, _, l3 = net
    h = F.silu(
        F.layer_norm(F.linear(x, l1.weight, l1.bias), n1.normalized_shape, n1.weight, n1.bias, n1.eps), inplace=True
    )
    h = F.silu(
        F.layer_norm(F.linear(h, l2.weight, l2.bias), n2.normalized_shape, n2.weight, n2.bias, n2.eps), inplace=True
    )
    return F.linear(h, l3.weight, l3.bias)


def zero_last(net: nn.Sequential) -> nn.Sequential:
    """Zero the output layer's weights (TD-MPC2 does so for its two-hot reward and Q heads: predictions start
    at the middle of the bins, 0)."""
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def z_and_a(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """[z, a] along the last dim, broadcasting their leading dims (e.g. one latent against many actions)."""
    if z.shape[:-1] != a.shape[:-1]:
        lead = torch.broadcast_shapes(z.shape[:-1], a.shape[:-1])
        z, a = z.expand(*lead, z.shape[-1]), a.expand(*lead, a.shape[-1])
    return torch.cat([z, a], -1)


class RewardHead(nn.Module):
    """r̂(z_t, a_t): reward received for applying a_t in the state with latent z_t; a scalar or, with
    `reward_bins`, two-hot logits (two_hot.py)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.reg = Regression(cfg.reward_bins)
        self.net = mlp(cfg.latent_dim + cfg.action_dim, cfg.head_hidden, self.reg.out_dim)
        if self.reg.bins:
            zero_last(self.net)

    def raw(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return mlp_forward(self.net, z_and_a(z, a))

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.reg.decode(self.raw(z, a))

    def loss(self, z: torch.Tensor, a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-element loss [...] against the recorded reward: squared error, or the two-hot cross-entropy."""
        return self.reg.loss(self.raw(z, a), target)


class ValueHead(nn.Module):
    """V(z): discounted return from z, used to bootstrap the end of the planning horizon."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cfg.latent_dim, cfg.head_hidden, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return mlp_forward(self.net, z).squeeze(-1)


class QEnsemble(nn.Module):
    """Q_i(z, a), i < num_q: discounted return after taking `a` in `z`, learned by temporal difference
    (TD-MPC, Hansen et al. 2022); several members give pessimistic or averaged targets (REDQ, Chen et al. 2021).
    Each member is a scalar or, with `reward_bins`, two-hot logits (two_hot.py)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.reg = Regression(cfg.reward_bins)
        d_in, out = cfg.latent_dim + cfg.action_dim, self.reg.out_dim
        self.members = nn.ModuleList(mlp(d_in, cfg.head_hidden, out) for _ in range(cfg.num_q))
        if self.reg.bins:
            for m in self.members:
                zero_last(m)

    def raw(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """z[..., D], a[..., A] (command units) -> the members' outputs [num_q, ..., out_dim]."""
        x = z_and_a(z, a)
        return torch.stack([mlp_forward(m, x) for m in self.members])

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """z[..., D], a[..., A] (command units) -> Q [num_q, ...]."""
        return self.reg.decode(self.raw(z, a))


class CostHead(nn.Module):
    """Energy C(z) ≥ 0: low on latents of visited states, ≥ margin on negatives (margin loss)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cfg.latent_dim, cfg.head_hidden, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.softplus(mlp_forward(self.net, z).squeeze(-1))


class ActorHead(nn.Module):
    """π(z) ∈ [-1, 1]^A (tanh); the caller scales to the action bounds."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cfg.latent_dim, cfg.head_hidden, cfg.action_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(mlp_forward(self.net, z))


class GoalDistanceHead(nn.Module):
    """d(z, g) = ||φ(z) - φ(g)||: a learned temporal distance, in environment steps from z to g.

    Unlike the L2 distance of raw latents it knows about obstacles (a goal behind a wall is far
    when the way round is long). Trained on shortest paths through recorded episodes by
    `moejepa-train goal` (training/goal_distance.py).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cfg.latent_dim, cfg.goal_hidden, cfg.goal_embed_dim)

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        return mlp_forward(self.net, z)

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """z[..., D], g[D] or broadcastable → distances [...] (≥ 0)."""
        d = self.embed(z) - self.embed(g)
        return d.pow(2).sum(-1).clamp_min(1e-12).sqrt()
