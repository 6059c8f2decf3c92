"""Mixture of experts over [z, embed(a)]: float32 top-k router, stacked expert MLPs, Switch aux losses.

Expert evaluation (all share the same stacked weights, so they are interchangeable):
- ``grouped``: sort the (token, expert) assignments by expert and run each expert layer as one
  ``torch.nn.functional.grouped_mm`` (no padding, no Python loop over experts); its cost
  follows the *active* parameters whatever the routing. Chosen for batches above
  `MASKED_MAX_TOKENS`: bench.micro.bench_moe (1 thread, default config, min of interleaved runs)
  at 1024 tokens measured grouped 1.9 ms, masked 2.8 ms, loop 2.3 ms, dense (equal active
  params) 1.4 ms, for random and for concentrated (planning-like) routing alike.
- ``masked``: every expert for every token in one wide matmul, unchosen experts zeroed through
  the gate, gates folded into the second matmul: num_experts/top_k × the active FLOPs but the
  fewest kernels, so it wins at small batches (≤ 64 tokens: 0.26 ms vs 0.32 ms grouped).
  Padded gather + bmm was not kept: with concentrated routing its padding makes it cost as
  much as ``masked`` (MACHINE-NOTES), with more kernels.
- ``loop``: the obvious per-expert Python loop; a reference for tests and the bench only.

No-grad rollouts on CPU (planning) bypass these through `MoE.forward_sorted` (called by
`Predictor.rollout`): the `grouped` maths (one grouped_mm per layer) with biases packed into
aligned weights, the shared first-step z-part computed once and work buffers reused across
steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# At or below this many (token, expert) assignments masked beats sort + grouped_mm (bench_moe.py).
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
    if k == 2:  # softmax of two = sigmoid of the difference: 2 small kernels instead of 5
        return idx, torch.sigmoid(vals - vals.flip(-1))
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

    def __init__(
        self,
        latent_dim: int,
        embed_dim: int,
        hidden: int,
        num_experts: int = 4,
        top_k: int = 2,
        router_noise: float = 0.0,
        impl: str = "auto",
    ):
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
            logits = zr + e.float() @ w[:, self.D :].t()
        logits = logits + self.router.bias.float()
        sel = logits
        if self.training and self.router_noise > 0:
            sel = logits + torch.randn_like(logits) * self.router_noise
        idx, gates = top_k_gates(sel, self.k)
        return logits, idx, gates.to(e.dtype)

    def forward(self, z: torch.Tensor, e: torch.Tensor, zcache=None, impl: str | None = None, need_aux: bool = True):
        """Δ[T, D] for tokens z[T, D], e[T, Ea]; `zcache` = z_part(z0) of one shared z0 (broadcast)."""
        T = e.shape[0]
        hz, zr = (None, None) if zcache is None else zcache
        logits, idx, gates = self.route(z, e, zr)
        impl = requested = impl or self.impl
        if impl == "auto":
            small = T * self.k <= MASKED_MAX_TOKENS or self.E == 1
            ok = self.H % 4 == 0 and self.D % 4 == 0 and _GROUPED_OK.get(e.device.type, True)
            impl = "grouped" if ok and not small else "masked"
        if impl == "grouped" and e.device.type != "cpu" and requested == "auto":
            try:  # grouped_mm on accelerators needs newer hardware / bf16: check once, fall back
                delta = self._grouped(z, e, hz, idx, gates)
            except (RuntimeError, NotImplementedError):
                _GROUPED_OK[e.device.type] = False
                delta = self._masked(z, e, hz, idx, gates)
        elif impl == "grouped":
            delta = self._grouped(z, e, hz, idx, gates)
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

    # ------------------------------------------------- no-grad rollout fast path
    def pack(self) -> dict[str, torch.Tensor]:
        """Weights for `forward_sorted` (no grad): every bias as an extra last row fed by a ones
        column of the input, so each GEMM writes its output directly (`addmm` would first copy
        the broadcast bias into it). Cached until a parameter changes (storage or version)."""
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters())
        cached = getattr(self, "_packed", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            D = self.D
            w1 = torch.cat([self.w1, self.b1.unsqueeze(1)], 1)  # [E, D+Ea+1, H]
            pk = {
                "w1": w1,
                "w1e": w1[:, D:].contiguous(),
                "w2": torch.cat([self.w2, self.b2.unsqueeze(1)], 1),
                "w1z": self.w1[:, :D].permute(1, 0, 2).reshape(D, self.E * self.H),
            }  # z_part as one GEMM
            if self.router is not None:
                wr = torch.cat([self.router.weight.t(), self.router.bias.unsqueeze(0)], 0)  # [D+Ea+1, E]
                pk["wr"], pk["wre"], pk["wrz"] = wr.float(), wr[D:].float(), wr[:D].float()
            # grouped_mm wants 16-byte aligned rows: zero rows pad each K to a multiple of 4
            for name in ("w1", "w1e", "w2"):
                K = pk[name].shape[1]
                pk[name + "_g"] = F.pad(pk[name], (0, 0, 0, -K % 4)).contiguous()
        self._packed = (key, pk)
        return pk

    def z_part_packed(self, z: torch.Tensor, pk: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`z_part` from the packed weights: [T, E, H] and router [T, E] as two plain GEMMs."""
        h = (z @ pk["w1z"]).view(z.shape[0], self.E, self.H)
        return h, (z.float() @ pk["wrz"] if "wrz" in pk else None)

    def forward_sorted(self, x: torch.Tensor, pk: dict, zcache=None, bufs: dict | None = None) -> torch.Tensor:
        """Δ[T, D] without grad from x = [z, e, 1] ([T, D+Ea+1]), or x = [e, 1] with `zcache` =
        z_part(z0) of the one latent shared by all tokens. Planning hot path.

        Same maths as `_grouped` (assignments sorted by expert, one `grouped_mm` per layer,
        gates on the expert outputs, index_add back to token order), with biases packed into
        the GEMMs and work buffers reused. A per-expert GEMM loop measured ~10% faster per
        plan here (CPU ms p50 30.6 vs 34.2, default planner, 1 thread, side by side), because
        grouped_mm's bookkeeping costs ~0.1 ms a call; we keep no Python loop over experts on
        the hot path so the cost does not grow with num_experts.
        `bufs`: work tensors reused across the steps of one rollout (owned by the caller).
        """
        T, k, H = x.shape[0], self.k, self.H
        hz, zr = (None, None) if zcache is None else zcache
        if self.router is None:
            w1 = pk["w1"] if hz is None else pk["w1e"]
            pre = x @ w1[0] if hz is None else (x @ w1[0]).add_(hz.reshape(-1, 1, H)[:, 0])
            h = torch.cat([F.silu(pre, inplace=True), x.new_ones(T, 1)], -1)
            return h @ pk["w2"][0]
        logits = x.float() @ pk["wr"] if hz is None else torch.addmm(zr, x.float(), pk["wre"])
        idx, gates = top_k_gates(logits, k)
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = torch.div(order, k, rounding_mode="floor") if k > 1 else order
        counts = torch.bincount(flat, minlength=self.E)
        bufs = {} if bufs is None else bufs
        w1 = pk["w1_g"] if hz is None else pk["w1e_g"]
        w2 = pk["w2_g"]
        h = bufs.get("h")
        if h is None or h.shape[0] != T * k or h.dtype != x.dtype:
            # [SiLU(first layer) | 1 | 0-padding]: the ones column carries b2, padding aligns rows
            h = bufs["h"] = x.new_zeros(T * k, w2.shape[1])
            h[:, H] = 1.0
        pad = w1.shape[1] - x.shape[1]
        xs = (F.pad(x, (0, pad)) if pad else x).index_select(0, tok)
        offs = torch.cumsum(counts, 0).to(torch.int32)
        pre = F.grouped_mm(xs, w1, offs=offs)  # one call for all experts: no Python loop
        if hz is not None:
            pre.add_(hz.reshape(-1, self.E, H)[0].index_select(0, flat.index_select(0, order)))
        h[:, :H] = F.silu(pre, inplace=True)
        y = F.grouped_mm(h, w2, offs=offs)
        y.mul_(gates.to(x.dtype).reshape(-1).index_select(0, order).unsqueeze(-1))
        out = bufs.get("out")
        if out is None or out.shape[0] != T or out.dtype != x.dtype:
            out = bufs["out"] = x.new_empty(T, self.D)
        return out.zero_().index_add_(0, tok, y)

    # ------------------------------------------------------------ batched paths
    def _masked(self, z, e, hz, idx, gates):
        T, E, H, D = e.shape[0], self.E, self.H, self.D
        b1 = self.b1.reshape(1, E * H)
        if hz is None:
            w = self.w1.permute(1, 0, 2).reshape(D + self.Ea, E * H)
            pre = torch.addmm(b1, torch.cat([z, e], -1), w)
        else:
            wa = self.w1[:, D:].permute(1, 0, 2).reshape(self.Ea, E * H)
            pre = torch.addmm(b1, e, wa) + hz.reshape(hz.shape[0], E * H)
        inplace = not torch.is_grad_enabled()
        h = F.silu(pre, inplace=inplace)
        if E == 1:  # dense predictor: the single gate is exactly 1
            return torch.addmm(self.b2[0], h, self.w2[0])
        G = e.new_zeros(T, E).scatter(1, idx, gates)  # gates of unchosen experts are 0
        hv = h.view(T, E, H)
        hg = hv.mul_(G.unsqueeze(-1)) if inplace else hv * G.unsqueeze(-1)
        return torch.addmm(G @ self.b2, hg.reshape(T, E * H), self.w2.reshape(E * H, D))

    def _grouped(self, z, e, hz, idx, gates):
        T, D = e.shape[0], self.D
        flat_e = idx.reshape(-1)
        order = torch.argsort(flat_e, stable=True)
        tok = order // self.k if self.k > 1 else order  # token of each sorted assignment
        offs = torch.cumsum(torch.bincount(flat_e, minlength=self.E), 0).to(torch.int32)
        # b1 folded into the GEMM as a ones column (grouped_mm takes no bias), zero-padded so
        # rows stay 16-byte aligned as grouped_mm requires
        din = (D if hz is None else 0) + self.Ea
        pad = 4 - (din + 1) % 4 if (din + 1) % 4 else 0
        ones = torch.cat([e.new_ones(T, 1), e.new_zeros(T, pad)], -1)
        wb = torch.cat([self.b1.unsqueeze(1), self.b1.new_zeros(self.E, pad, self.H)], 1)
        if hz is None:
            x = torch.cat([z, e, ones], -1).index_select(0, tok)
            pre = F.grouped_mm(x, torch.cat([self.w1, wb], 1), offs=offs)
        else:
            x = torch.cat([e, ones], -1).index_select(0, tok)
            w1 = torch.cat([self.w1[:, D:], wb], 1)
            ex = flat_e.index_select(0, order)
            pre = F.grouped_mm(x, w1, offs=offs) + (hz[0].index_select(0, ex) if hz.shape[0] == 1 else hz[tok, ex])
        g = gates.reshape(-1).index_select(0, order).unsqueeze(-1)
        inplace = not torch.is_grad_enabled()
        h = F.silu(pre, inplace=inplace)
        h = h.mul_(g) if inplace else h * g
        y = F.grouped_mm(h, self.w2, offs=offs)
        if y.requires_grad:  # grouped_mm's backward needs a dense incoming gradient
            y.register_hook(lambda gr: gr.contiguous())
        G = e.new_zeros(T, self.E).scatter(1, idx, gates)
        return (G @ self.b2).index_add_(0, tok, y)

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
                pre = e[tok] @ self.w1[i, self.D :] + hzi
            y = F.silu(pre + self.b1[i]) @ self.w2[i] + self.b2[i]
            out = out.index_add(0, tok, y * gates[tok, slot].unsqueeze(-1))
        return out
