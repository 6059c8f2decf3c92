"""How the reward and Q heads regress their targets: a scalar under squared error, or TD-MPC2's discrete
regression (Hansen et al. 2024, sec. 3 and app. A): the target is squashed by symlog(y) = sign(y) log(1 + |y|),
spread over its two nearest of `bins` evenly spaced points in [-10, 10] (a two-hot vector) and learnt by
cross-entropy; the prediction is symexp of the softmax-weighted mean of the points. Cross-entropy keeps the
gradient's size independent of the return's scale (rewards summed over an action repeat, returns in the
hundreds), where squared error grows with it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SYMLOG_RANGE = 10.0  # TD-MPC2's vmin / vmax in symlog space: |y| up to e^10 - 1 ≈ 22026


def symlog(y: torch.Tensor) -> torch.Tensor:
    return torch.sign(y) * torch.log1p(y.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class Regression:
    """`bins` = 0: the head outputs one number, learnt by squared error. `bins` >= 3: it outputs `bins`
    logits, learnt by cross-entropy against the two-hot target. `decode` and `loss` take the head's raw output
    [..., out_dim] and return [...]."""

    def __init__(self, bins: int = 0):
        if bins != 0 and bins < 3:
            raise ValueError(f"two-hot regression: bins={bins} must be 0 (scalar) or >= 3")
        self.bins = int(bins)
        self.out_dim = self.bins or 1
        self.step = 2 * SYMLOG_RANGE / (self.bins - 1) if self.bins else 0.0
        self._points: dict[tuple, torch.Tensor] = {}  # per (device, dtype): decode runs in the planner's loop

    def points(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        if key not in self._points:
            with torch.inference_mode(False):  # a normal tensor, so autograd may save it after a planner's call
                self._points[key] = torch.linspace(-SYMLOG_RANGE, SYMLOG_RANGE, self.bins, device=key[0], dtype=key[1])
        return self._points[key]

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        if not self.bins:
            return raw.squeeze(-1)
        return symexp((F.softmax(raw, -1) * self.points(raw)).sum(-1))

    def two_hot(self, y: torch.Tensor) -> torch.Tensor:
        """[...] targets -> [..., bins]: weight on the two points around symlog(y), clamped to the range."""
        x = symlog(y).clamp(-SYMLOG_RANGE, SYMLOG_RANGE)
        pos = (x + SYMLOG_RANGE) / self.step
        lo = pos.floor().clamp(max=self.bins - 2)
        frac = (pos - lo).unsqueeze(-1)
        lo = lo.long().unsqueeze(-1)
        out = torch.zeros(*y.shape, self.bins, device=y.device, dtype=y.dtype)
        return out.scatter(-1, lo, 1.0 - frac).scatter(-1, lo + 1, frac)

    def loss(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.bins:
            return (raw.squeeze(-1) - y).square()
        return -(self.two_hot(y) * F.log_softmax(raw, -1)).sum(-1)
