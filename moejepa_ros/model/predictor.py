"""Predictors: the action-conditioned residual MoE/dense dynamics and the action-free Stage-1 predictor."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .encoder import SimNorm, make_latent_norm
from .moe import MoE

# No-grad CPU rollouts take `_rollout_sorted` from this much work on: samples x horizon x top_k x
# expert hidden. It pays a fixed setup (packed weights, SimNorm blocks, input rows) and then costs
# less per step than the batched `masked` path. bench.micro.bench_rollout_path (1 thread, ms, masked
# over sorted): default config (hidden 128) 8 x 1 steps 0.73, 64 x 1 0.88, 16 x 8 1.13,
# 64 x 8 1.11; the Two-Rooms predictor (hidden 512) 8 x 1 0.84, 64 x 1 1.11, 64 x 8 1.41.
SORTED_MIN_WORK = 32768


def _mean_aux(auxes: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([a[k] for a in auxes]).mean(0) for k in auxes[0]}


def simnorm_rows(x: torch.Tensor, group: int, blocks: torch.Tensor) -> torch.Tensor:
    """SimNorm of x[T, D] (softmax within each group of `group` dims), the same maths as
    `SimNorm` with ~half its CPU time: one row-wide max (softmax is shift-invariant per group)
    and the group sums as one GEMM with the block-ones matrix `blocks` [D, D/group] instead of
    reductions over a last dim of 8. Falls back to per-group maxima if a group underflows."""
    e = torch.sub(x, x.amax(-1, keepdim=True)).exp_()
    s = e @ blocks  # [T, D/group]
    if bool(s.min() < 1e-30):  # a group far below the row max: shift per group instead
        y = x.reshape(x.shape[0], -1, group)
        e = torch.sub(y, y.amax(-1, keepdim=True)).exp_().reshape(x.shape)
        s = e @ blocks
    return e.view(x.shape[0], -1, group).div_(s.unsqueeze(-1)).view(x.shape)


def is_shared(z0: torch.Tensor) -> bool:
    """True when every row of z0 [N, D] is the same latent (one row, or a stride-0 expand)."""
    return z0.shape[0] == 1 or z0.stride(0) == 0


class Predictor(nn.Module):
    """z_{t+1} = norm(z_t + Σ_i g_i Exp_i(z_t, embed(a_t))); dense = the same class with one expert.

    With SimNorm latents the residual is taken in log space, z_{t+1} = SimNorm(log z_t + Δ), so
    Δ = 0 is exactly the identity (SimNorm(z_t + 0) would flatten z_t towards uniform each step).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.latent_dim, self.action_dim = cfg.latent_dim, cfg.action_dim
        self.action_embed = nn.Linear(cfg.action_dim, cfg.action_embed_dim)
        self.moe = MoE(
            cfg.latent_dim,
            cfg.action_embed_dim,
            cfg.expert_hidden,
            cfg.experts,
            cfg.active_k,
            cfg.router_noise,
            cfg.moe_impl,
        )
        self.norm = make_latent_norm(cfg)
        self.log_residual = cfg.latent_norm == "simnorm"
        self.last_aux: dict[str, torch.Tensor] | None = None
        self.collect_stats = False  # True: also collect routing stats in no-grad eval rollouts

    def embed(self, a: torch.Tensor) -> torch.Tensor:
        return F.silu(self.action_embed(a))

    def step(self, z: torch.Tensor, e: torch.Tensor, zcache=None, need_aux: bool = True, impl: str | None = None):
        """One transition for tokens z[T, D] with embedded actions e[T, Ea] → (z', aux); `impl`
        overrides the MoE's expert evaluation (the ONNX graph asks for the traceable `masked`)."""
        delta, aux = self.moe(z, e, zcache, impl=impl, need_aux=need_aux)
        base = torch.log(z.clamp_min(1e-6)) if self.log_residual else z
        return self.norm(base + delta), aux

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """One step for any leading shape: z[..., D], a[..., A] → z'[..., D]."""
        lead = z.shape[:-1]
        zn, aux = self.step(z.reshape(-1, z.shape[-1]), self.embed(a.reshape(-1, a.shape[-1])))
        self.last_aux = aux
        return zn.reshape(*lead, -1)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor, need_aux: bool | None = None) -> torch.Tensor:
        """z0[N or 1, D], actions[N, H, A] → latents z_1…z_H [N, H, D]; batched over samples.

        Fast path for planning: when z0 is one latent shared by all samples ([1, D], or [N, D]
        expanded with stride 0) the z-part of the first expert layer and of the router is
        computed once and broadcast for step 1.
        """
        if z0.dim() != 2 or z0.shape[-1] != self.latent_dim:
            raise ValueError(f"rollout: z0 must be [N, {self.latent_dim}], got {tuple(z0.shape)}")
        if actions.dim() != 3 or actions.shape[-1] != self.action_dim:
            raise ValueError(f"rollout: actions must be [N, H, {self.action_dim}], got {tuple(actions.shape)}")
        N, H, _ = actions.shape
        if z0.shape[0] not in (1, N):
            raise ValueError(f"rollout: z0 has {z0.shape[0]} rows but actions have N={N}")
        if need_aux is None:  # routing stats cost ~10% of a planning step: only when training
            need_aux = torch.is_grad_enabled() or self.training or self.collect_stats
        e_all = self.embed(actions)  # all H action embeddings at once
        if not need_aux and not torch.is_grad_enabled() and self.fast_rollout_ok(N, H):
            return self._rollout_sorted(z0, e_all)
        z, zcache = z0, None
        if is_shared(z0):
            z = z0[:1]
            zcache = self.moe.z_part(z)
        z = z.expand(N, -1)
        out, auxes = [], []
        for t in range(H):
            z, aux = self.step(z, e_all[:, t], zcache, need_aux)
            zcache = None
            out.append(z)
            if aux is not None:
                auxes.append(aux)
        if auxes:  # keep the previous stats when this call collected none (no-grad planning)
            self.last_aux = _mean_aux(auxes)
        return torch.stack(out, dim=1)

    def fast_rollout_ok(self, n: int, horizon: int = 1) -> bool:
        """No-grad rollouts of n samples x `horizon` steps take `_rollout_sorted` on CPU with the
        `auto`/`grouped` impl, routing, and at least `SORTED_MIN_WORK` (below it `masked` is faster)."""
        m = self.moe
        return (
            m.impl in ("auto", "grouped")
            and self.action_embed.weight.device.type == "cpu"
            and m.E > 1
            and n * horizon * m.k * m.H >= SORTED_MIN_WORK
        )

    def _rollout_sorted(self, z0: torch.Tensor, e_all: torch.Tensor) -> torch.Tensor:
        """No-grad rollout through `MoE.forward_sorted` (planning hot path; the maths of `step`):
        weights packed once, the [e_t, 1] input rows of all steps built in one go, output
        preallocated."""
        m = self.moe
        pk = m.pack()
        N, H, Ea = e_all.shape
        ex = e_all.new_empty(H, N, Ea + 1)
        ex[..., :Ea] = e_all.transpose(0, 1)
        ex[..., Ea] = 1.0
        out = e_all.new_empty(N, H, self.latent_dim)
        norm = self.norm
        if isinstance(norm, SimNorm) and self.latent_dim % norm.group == 0:
            ones = torch.eye(self.latent_dim // norm.group, dtype=e_all.dtype, device=e_all.device)
            blocks = ones.repeat_interleave(norm.group, 0)  # [D, D/group]: x @ blocks = group sums
            norm = lambda x, g=norm.group: simnorm_rows(x, g, blocks)  # noqa: E731
        bufs: dict = {}  # forward_sorted's work tensors, reused by every step (delta is consumed in place)
        ex_t, out_t = ex.unbind(0), out.unbind(1)
        z = z0
        for t in range(H):
            if t == 0 and is_shared(z0):
                z = z0[:1]
                delta = m.forward_sorted(ex_t[0], pk, m.z_part_packed(z, pk), bufs)
            else:
                delta = m.forward_sorted(torch.cat([z, ex_t[t]], -1), pk, bufs=bufs)
            base = torch.log(z.clamp_min(1e-6)) if self.log_residual else z
            z = norm(delta.add_(base))
            out_t[t].copy_(z)
        return out


class FuturePredictor(nn.Module):
    """Stage-1 action-free predictor: context latent z[N, D] and future offset j → ẑ_{t+j}."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        self.offset_embed = nn.Embedding(cfg.stage1_max_offset + 1, 32)
        self.net = nn.Sequential(
            nn.Linear(d + 32, cfg.stage1_hidden),
            nn.LayerNorm(cfg.stage1_hidden),
            nn.SiLU(),
            nn.Linear(cfg.stage1_hidden, cfg.stage1_hidden),
            nn.SiLU(),
            nn.Linear(cfg.stage1_hidden, d),
        )
        self.norm = make_latent_norm(cfg)

    def forward(self, z: torch.Tensor, offsets: torch.Tensor | list[int]) -> torch.Tensor:
        """z[N, D], offsets[H] (ints in 1..stage1_max_offset) → predictions [N, H, D]."""
        offsets = torch.as_tensor(offsets, dtype=torch.long, device=z.device).reshape(-1)
        if offsets.numel() and (int(offsets.min()) < 0 or int(offsets.max()) > self.cfg.stage1_max_offset):
            raise ValueError(
                f"FuturePredictor: offsets {offsets.tolist()} outside "
                f"[0, stage1_max_offset={self.cfg.stage1_max_offset}]"
            )
        N, H = z.shape[0], offsets.numel()
        zz = z.unsqueeze(1).expand(N, H, -1)
        x = torch.cat([zz, self.offset_embed(offsets).unsqueeze(0).expand(N, H, -1)], -1)
        base = torch.log(zz.clamp_min(1e-6)) if self.cfg.latent_norm == "simnorm" else zz
        return self.norm(base + self.net(x))  # residual, in log space for SimNorm (see Predictor)
