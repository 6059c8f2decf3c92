"""AdamW with decay/no-decay parameter groups and a linear warm-up + cosine-decay LR schedule.

Weight decay is not applied to biases, norm gains and other 1-d parameters (the usual
practice since BERT / GPT-2). The schedule is a pure function of the step, so resuming only
needs the step count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def param_groups(
    named: Iterable[tuple[str, nn.Parameter]], weight_decay: float, lr_scale: dict[str, float] | None = None
) -> list[dict]:
    """Split trainable parameters into decay / no-decay groups, optionally per name prefix LR scales.

    `lr_scale` maps a parameter-name prefix (e.g. "encoder.") to an LR multiplier; each group
    carries `lr_scale` so the schedule can set `lr = base * scale`.
    """
    lr_scale = lr_scale or {}
    groups: dict[tuple[bool, float], dict] = {}
    for name, p in named:
        if not p.requires_grad:
            continue
        scale = 1.0
        for prefix, s in lr_scale.items():
            if name.startswith(prefix):
                scale = float(s)
        decay = p.ndim >= 2 and not name.endswith(".bias")
        key = (decay, scale)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    # deterministic order: decay groups first, then by scale
    return [groups[k] for k in sorted(groups, key=lambda k: (not k[0], k[1]))]


def make_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    lr_scale: dict[str, float] | None = None,
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `model` (raises if there are none)."""
    groups = param_groups(model.named_parameters(), weight_decay, lr_scale)
    if not groups:
        raise ValueError("no trainable parameters: is every module frozen?")
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    # `names` is informational; AdamW ignores unknown group keys but keeps them in state_dict
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)


class WarmupCosine:
    """LR multiplier: linear 0→1 over `warmup` steps, then cosine 1→`min_ratio` until `total`."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, base_lr: float, warmup: int, total: int, min_ratio: float = 0.1
    ):
        if total < 1:
            raise ValueError(f"schedule total steps must be >= 1, got {total}")
        self.optimizer, self.base_lr = optimizer, base_lr
        self.warmup, self.total, self.min_ratio = int(warmup), int(total), float(min_ratio)
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        """LR multiplier for the update that follows `step` completed updates."""
        if self.warmup > 0 and step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        t = min(1.0, (step - self.warmup) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for g in self.optimizer.param_groups:
            g["lr"] = self.base_lr * f * g.get("lr_scale", 1.0)

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def get_lr(self) -> float:
        return self.base_lr * self.factor(self.step_count)

    def state_dict(self) -> dict:
        return {
            "step_count": self.step_count,
            "base_lr": self.base_lr,
            "warmup": self.warmup,
            "total": self.total,
            "min_ratio": self.min_ratio,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self._apply()
