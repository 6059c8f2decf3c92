"""Gradient-based MPC: descend the objective w.r.t. the action sequence through the predictor.

Projected first-order optimisation (Adam or plain SGD) of normalised actions u, projected
back onto [-1, 1] after each step, from a few parallel starts (restart 0 = the warm start or
the CEM plan); the best iterate ever scored is kept, so the returned cost never exceeds the
starting cost. Only the actions get gradients (autograd.grad), never the model's parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import PlannerConfig
from .problem import Problem


def gradient_inits(mean: Tensor, std: float | Tensor, restarts: int, gen: torch.Generator) -> Tensor:
    """u0[R, H, A]: the given mean, plus R-1 Gaussian perturbations of it (clamped)."""
    inits = mean.unsqueeze(0).repeat(restarts, 1, 1)
    if restarts > 1:
        noise = torch.randn(inits[1:].shape, generator=gen, device=mean.device, dtype=mean.dtype)
        inits[1:] += noise * std
    return inits.clamp_(-1.0, 1.0)


def gradient_optimize(
    problem: Problem, cfg: PlannerConfig, inits: Tensor
) -> tuple[Tensor, float, list[dict[str, float]]]:
    """`cfg.grad_steps` projected steps from each init; return (best u[H, A], its cost, stats).

    stats[k]: `cost` = lowest cost among the restarts' k-th iterates (before step k; the last
    row is the final iterate), `best_cost` = best over all iterates so far (non-increasing).
    """
    with torch.inference_mode(False), torch.enable_grad():
        u = inits.detach().clone().requires_grad_(True)
        if cfg.grad_optimizer == "adam":
            opt = torch.optim.Adam([u], lr=cfg.grad_lr)
        else:
            opt = torch.optim.SGD([u], lr=cfg.grad_lr)
        best_cost = torch.full((u.shape[0],), float("inf"), dtype=u.dtype, device=u.device)
        best_u = u.detach().clone()
        rows = []
        for step in range(cfg.grad_steps + 1):
            last = step == cfg.grad_steps
            if last:
                with torch.no_grad():
                    cost = problem.evaluate(u)
            else:
                cost = problem.evaluate(u)
            c = torch.nan_to_num(cost.detach(), nan=float("inf"))
            better = c < best_cost
            best_cost = torch.where(better, c, best_cost)
            best_u = torch.where(better[:, None, None], u.detach(), best_u)
            rows.append(torch.stack([c.min(), best_cost.min()]))
            if last:
                break
            (grad,) = torch.autograd.grad(cost.sum(), u)
            u.grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
            opt.step()
            with torch.no_grad():
                u.clamp_(-1.0, 1.0)
        k = int(torch.argmin(best_cost))
        stats = [{"step": i, "cost": r[0], "best_cost": r[1]} for i, r in enumerate(torch.stack(rows).tolist())]
        return best_u[k].clone(), float(best_cost[k]), stats
