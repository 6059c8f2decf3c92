"""The shared sampling loop of CEM and MPPI: sample around a Gaussian, score, refit, repeat.

All samples of an iteration are scored by one batched rollout (no Python loop over samples).
Fixed slots hold the `keep_elites` best sequences of the previous iteration (iCEM; their cost is
reused, not recomputed), the current mean, and the policy-prior sequences (Mode-1 seeding
Mode-2, as in TD-MPC2); by default (`execute: best`) the best sequence ever scored is tracked and
returned, and the final mean is scored too, so the answer is never worse than any candidate seen;
`execute: mean` returns the refitted mean, `execute: elite` one last-iteration elite drawn by its
softmax weight (TD-MPC).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .cem import softmax_weights
from .config import PlannerConfig
from .problem import Problem

# update(u[N, H, A], cost[N], cfg) -> (fitted mean[H, A], fitted std[H, A], stat of the fit)
UpdateRule = Callable[[Tensor, Tensor, PlannerConfig], "tuple[Tensor, Tensor, Tensor]"]


class Buffers:
    """Reused work tensors, reallocated only when a shape, device or dtype changes."""

    def __init__(self) -> None:
        self._t: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        t = self._t.get(name)
        if t is None or t.shape != shape or t.device != like.device or t.dtype != like.dtype:
            t = torch.empty(shape, device=like.device, dtype=like.dtype)
            self._t[name] = t
        return t

    def clear(self) -> None:
        self._t.clear()


def policy_prior(problem: Problem, n: int, horizon: int, noise_std: float, gen: torch.Generator) -> Tensor:
    """u[n, H, A]: roll out the model's actor from z0 (sample 0 noise-free, the rest perturbed)."""
    model = problem.model
    z = problem.z0.unsqueeze(0).expand(n, -1)
    out = []
    for _ in range(horizon):
        a = model.actor(z)
        if noise_std > 0 and n > 1:
            noise = torch.randn(a.shape, generator=gen, device=a.device, dtype=a.dtype) * noise_std
            noise[0] = 0
            a = a + noise
        a = a.clamp(-1.0, 1.0)
        out.append(a)
        z = model.rollout(z, problem.to_actions(a).unsqueeze(1))[:, 0]
    problem.rollout_steps += n * horizon
    return torch.stack(out, 1)


def sampling_optimize(
    problem: Problem,
    cfg: PlannerConfig,
    mean0: Tensor,
    gen: torch.Generator,
    update: UpdateRule,
    buffers: Buffers,
    prior: Tensor | None = None,
) -> tuple[Tensor, float, list[dict[str, float]], Tensor, Tensor]:
    """Run `cfg.iterations` of sample -> score -> refit; return (best u, cost, stats, mean, std)."""
    horizon, adim = mean0.shape
    n = cfg.samples
    mean = mean0.clone()
    std = torch.full_like(mean, cfg.init_std).clamp_(cfg.min_std, cfg.max_std)
    eps = buffers.get("eps", (n, horizon, adim), mean)
    u = buffers.get("u", (n, horizon, adim), mean)
    best_u = mean.clone()
    best_cost = torch.full((), float("inf"), device=mean.device, dtype=mean.dtype)
    p = 0 if prior is None else prior.shape[0]
    k = min(cfg.keep_elites, n - p - int(cfg.keep_mean))
    cost = buffers.get("cost", (n,), mean)
    fixed = k + int(cfg.keep_mean) + p
    sizes = []
    kept_u = kept_cost = None  # iCEM's carried elites, set at the end of each iteration
    rows = []  # per-iteration [min cost, best so far, fit stat, mean std]; one host sync at the end
    for it in range(cfg.iterations):
        # iCEM's population decay: later iterations refine with fewer samples (views, no allocation).
        n_it = max(cfg.elites, fixed + 1, int(round(n * cfg.population_decay**it)))
        sizes.append(n_it)
        eps_i, u_i, cost_i = eps[:n_it], u[:n_it], cost[:n_it]
        torch.randn(eps_i.shape, generator=gen, out=eps_i)
        torch.addcmul(mean, std, eps_i, out=u_i)
        # Slots: [carried elites (k) | mean | policy prior (p) | Gaussian samples].
        if it > 0 and k:
            u[:k] = kept_u
        if cfg.keep_mean:
            u[k] = mean
        if p:
            u[k + int(cfg.keep_mean) : k + int(cfg.keep_mean) + p] = prior
        u_i.clamp_(-1.0, 1.0)
        # Carried elites keep their known cost (the model is deterministic): roll out the rest.
        start = k if it > 0 else 0
        cost_i[start:] = torch.nan_to_num(problem.evaluate(u_i[start:]), nan=float("inf"))
        if it > 0 and k:
            cost[:k] = kept_cost
        i = torch.argmin(cost_i)
        better = cost[i] < best_cost
        best_cost = torch.where(better, cost[i], best_cost)
        best_u = torch.where(better, u[i], best_u)
        new_mean, new_std, fit = update(u_i, cost_i, cfg)
        if k:  # iCEM (Pinneri et al. 2020): a few elites survive into the next iteration
            kept_cost, idx = torch.topk(cost_i, k, largest=False, sorted=False)
            kept_u = u_i.index_select(0, idx)
        mean = cfg.momentum * mean + (1.0 - cfg.momentum) * new_mean
        std = new_std.clamp(cfg.min_std, cfg.max_std)
        rows.append(torch.stack([cost[i], best_cost, fit, std.mean()]))
    # The refitted mean is a candidate too (MPPI's classic answer); one small rollout.
    mean_cost = torch.nan_to_num(problem.evaluate(mean.unsqueeze(0))[0], nan=float("inf"))
    if cfg.execute == "mean":
        best_cost, best_u = mean_cost, mean.clone()
    elif cfg.execute == "elite":
        # TD-MPC: one elite of the last iteration, drawn by its softmax weight, not the argmin of ~1000
        # noisy estimates (which picks the sequence the model and Q overrate most).
        elite_cost, idx = torch.topk(cost_i, min(cfg.elites, cost_i.shape[0]), largest=False, sorted=False)
        j = idx[torch.multinomial(softmax_weights(elite_cost, cfg.temperature), 1, generator=gen)[0]]
        best_cost, best_u = cost_i[j].clone(), u_i[j].clone()
    elif bool(mean_cost < best_cost):
        best_cost, best_u = mean_cost, mean.clone()
    stats = [
        {"iteration": j, "samples": sizes[j], "min_cost": r[0], "best_cost": r[1], "fit_cost": r[2], "std": r[3]}
        for j, r in enumerate(torch.stack(rows).tolist())
    ]
    return best_u, float(best_cost), stats, mean, std
