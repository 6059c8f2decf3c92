"""Mixture of experts over [z, embed(a)]: float32 top-k router, stacked expert MLPs, Switch aux losses.

Expert evaluation (all share the same stacked weights, so they are interchangeable):
- ``grouped``: sort the (token, expert) assignments by expert and run both expert layers as
  one ``torch.nn.functional.grouped_mm`` each (no padding, no Python loop over experts).
  Its cost follows the *active* parameters, whatever the routing: measured (bench/bench_moe.py,
  2 CPU cores) it is the fastest batched variant at batch ≥ 256 for both random routing and the
  concentrated routing of planning, where every sample starts from one latent.
- ``masked``: compute every expert for every token (one wide matmul), zero the unchosen ones
  through the gate, and fold the gates into the second layer (one more matmul). It costs
  num_experts/top_k × the active FLOPs but has the fewest kernel launches, so it wins at small
  batches where overhead dominates.
- ``loop``: the obvious per-expert Python loop; a reference for tests and the bench only.
``auto`` picks masked below `MASKED_MAX_TOKENS` tokens and grouped above (measured crossover).
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

# Below this many tokens the single-matmul masked path beats sort + grouped_mm (bench_moe.py).
MASKED_MAX_TOKENS = 128
_GROUPED_OK: dict[str, bool] = {}  # device type -> grouped_mm worked there ("auto" falls back)


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over a *short* last dim (experts, top-k, SimNorm groups).

    Written out because on CPU (torch 2.13, 2 threads) `F.softmax` over a last dim of 2–8 takes
    ~10 ms for a [256, 2] tensor and ~0.3 ms for [256, 16, 8]; this form costs tens of µs.
    """
    e = torch.exp(x - x.amax(dim=-1, keepdim=True).detach())
    return e / e.sum(dim=-1, keepdim=True)


def top_k_gates(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the k largest logits per row and their softmax renormalised over those k."""
    vals, idx = torch.topk(logits, k, dim=-1)
    return idx, softmax_last(vals)


def routing_aux(logits: torch.Tensor, idx: torch.Tensor, num_experts: int) -> dict[str, torch.Tensor]:
    """Switch load-balancing loss N·Σ f_i·P_i, router z-loss, load fractions f and router entropy."""
    probs = softmax_last(logits)
    counts = torch.bincount(idx.reshape(-1), minlength=num_experts).to(probs.dtype)
    load = counts / counts.sum().clamp_min(1.0)  # f_i: fraction of assignments sent to expert i
    balance = num_experts * torch.sum(load * probs.mean(dim=0))
    z_loss = torch.logsumexp(logits, dim=-1).square().mean()
    entropy = -(probs * torch.log(probs.clamp_min(1e-9))).sum(-1).mean()
    return {"balance": balance, "z_loss": z_loss, "load": load.detach(), "entropy": entropy.detach()}


class MoE(nn.Module):
    """Residual-delta experts: Δ = Σ_{i∈topk} g_i · Exp_i([z, e]), Exp_i = W2_i·SiLU(W1_i·x + b1_i) + b2_i."""

    def __init__(self, latent_dim: int, embed_dim: int, hidden: int, num_experts: int = 4,
                 top_k: int = 2, router_noise: float = 0.0, impl: str = "auto"):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"MoE: top_k={top_k} must be in [1, num_experts={num_experts}]")
        self.D, self.Ea, self.H, self.E, self.k = latent_dim, embed_dim, hidden, num_experts, top_k
        self.router_noise, self.impl = router_noise, impl
        din = latent_dim + embed_dim
        b1, b2 = 1.0 / math.sqrt(din), 1.0 / math.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(num_experts, din, hidden).uniform_(-b1, b1))
        self.b1 = nn.Parameter(torch.empty(num_experts, hidden).uniform_(-b1, b1))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden, latent_dim).uniform_(-b2, b2))
        self.b2 = nn.Parameter(torch.empty(num_experts, latent_dim).uniform_(-b2, b2))
        # Router G(z, a): a linear map in float32 (kept even for one expert so configs stay uniform).
        self.router = nn.Linear(din, num_experts) if num_experts > 1 else None
        if self.router is not None:
            nn.init.normal_(self.router.weight, std=0.02)
            nn.init.zeros_(self.router.bias)

    # ---------------------------------------------------------------- z-part cache
    def z_part(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """First-layer and router contributions of z alone: [T, E, H] and [T, E] (for shared z)."""
        h = torch.einsum("td,edh->teh", z, self.w1[:, : self.D])
        r = None
        if self.router is not None:
            r = z.float() @ self.router.weight[:, : self.D].float().t()
        return h, r

    # --------------------------------------------------------------------- routing
    def route(self, z, e, zr=None):
        """Router logits (float32), top-k indices and renormalised gates for each token."""
        T = e.shape[0]
        if self.router is None:
            idx = torch.zeros(T, 1, dtype=torch.long, device=e.device)
            return None, idx, torch.ones(T, 1, dtype=e.dtype, device=e.device)
        w = self.router.weight.float()
        if zr is None:
            logits = torch.cat([z, e], -1).float() @ w.t()
        else:
            logits = zr + e.float() @ w[:, self.D:].t()
        logits = logits + self.router.bias.float()
        sel = logits
        if self.training and self.router_noise > 0:
            sel = logits + torch.randn_like(logits) * self.router_noise
        idx, gates = top_k_gates(sel, self.k)
        return logits, idx, gates.to(e.dtype)

    def forward(self, z: torch.Tensor, e: torch.Tensor, zcache=None, impl: str | None = None,
                need_aux: bool = True):
        """Δ[T, D] for tokens z[T, D], e[T, Ea]; `zcache` = z_part(z0) of one shared z0 (broadcast)."""
        T = e.shape[0]
        hz, zr = (None, None) if zcache is None else zcache
        logits, idx, gates = self.route(z, e, zr)
        impl = impl or self.impl
        if impl == "auto":
            impl = "masked" if (T * self.k <= MASKED_MAX_TOKENS or self.E == 1) else "grouped"
        if impl == "grouped" and not _GROUPED_OK.get(e.device.type, True):
            impl = "masked"  # grouped_mm unsupported on this device/dtype (checked once)
        if impl == "grouped":
            try:
                delta = self._grouped(z, e, hz, idx, gates)
            except (RuntimeError, NotImplementedError):
                if self.impl != "auto":
                    raise
                _GROUPED_OK[e.device.type] = False
                delta = self._masked(z, e, hz, idx, gates)
        elif impl == "masked":
            delta = self._masked(z, e, hz, idx, gates)
        elif impl == "loop":
            delta = self._loop(z, e, hz, idx, gates)
        else:
            raise ValueError(f"MoE: unknown impl={impl!r}; known: auto, grouped, masked, loop")
        aux = None
        if need_aux and logits is not None:
            aux = routing_aux(logits, idx, self.E)
        elif need_aux:
            zero = e.new_zeros(())
            aux = {"balance": zero + 1.0, "z_loss": zero, "load": e.new_ones(1), "entropy": zero}
        return delta, aux

    # ---------------------------------------------------------------- first layer
    def _pre_all(self, z, e, hz):
        """First-layer pre-activations of every expert for every token: [T, E, H]."""
        T = e.shape[0]
        if hz is None:
            x = torch.cat([z, e], -1)
            w = self.w1.permute(1, 0, 2).reshape(self.D + self.Ea, self.E * self.H)
            pre = (x @ w).view(T, self.E, self.H)
        else:
            wa = self.w1[:, self.D:].permute(1, 0, 2).reshape(self.Ea, self.E * self.H)
            pre = (e @ wa).view(T, self.E, self.H) + hz
        return pre + self.b1

    def _masked(self, z, e, hz, idx, gates):
        T = e.shape[0]
        h = F.silu(self._pre_all(z, e, hz))
        if self.E == 1:  # dense predictor: the single gate is exactly 1
            return h.reshape(T, self.H) @ self.w2[0] + self.b2[0]
        G = e.new_zeros(T, self.E).scatter(1, idx, gates)  # gates of unchosen experts are 0
        hg = (h * G.unsqueeze(-1)).reshape(T, self.E * self.H)
        return hg @ self.w2.reshape(self.E * self.H, self.D) + G @ self.b2

    def _grouped(self, z, e, hz, idx, gates):
        T = e.shape[0]
        flat_e = idx.reshape(-1)
        order = torch.argsort(flat_e, stable=True)
        ex = flat_e[order]  # expert id of each sorted assignment
        tok = order // self.k  # token of each sorted assignment
        offs = torch.cumsum(torch.bincount(flat_e, minlength=self.E), 0).to(torch.int32)
        g = gates.reshape(-1)[order].unsqueeze(-1)
        if hz is None:
            pre = F.grouped_mm(torch.cat([z, e], -1)[tok], self.w1, offs=offs)
        else:
            w1a = self.w1[:, self.D:].contiguous()
            pre = F.grouped_mm(e[tok], w1a, offs=offs) + (hz[0, ex] if hz.shape[0] == 1 else hz[tok, ex])
        h = F.silu(pre + self.b1[ex]) * g
        y = F.grouped_mm(h, self.w2, offs=offs) + g * self.b2[ex]
        if y.requires_grad:  # grouped_mm's backward needs a dense incoming gradient
            y.register_hook(lambda gr: gr.contiguous())
        return y.new_zeros(T, self.D).index_add_(0, tok, y)

    def _loop(self, z, e, hz, idx, gates):
        """Reference: a Python loop over experts, tokens picked by mask (tests and bench only)."""
        T = e.shape[0]
        x = torch.cat([z, e], -1)
        out = e.new_zeros(T, self.D)
        for i in range(self.E):
            tok, slot = torch.nonzero(idx == i, as_tuple=True)
            if tok.numel() == 0:
                continue
            if hz is None:
                pre = x[tok] @ self.w1[i]
            else:
                hzi = hz[0, i] if hz.shape[0] == 1 else hz[tok, i]
                pre = e[tok] @ self.w1[i, self.D:] + hzi
            y = F.silu(pre + self.b1[i]) @ self.w2[i] + self.b2[i]
            out = out.index_add(0, tok, y * gates[tok, slot].unsqueeze(-1))
        return out
