"""Action bounds: the one check every setter runs (node parameter callback, controller, planner), and the
trained-range warning.

Planners map u in [-1, 1] onto [low, high] in float32 through (high - low) / 2, so bounds must be finite
*after* that arithmetic in float32 (±1e308 passes a float64 finiteness check and becomes inf there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bounds_problem(low: Sequence[float], high: Sequence[float], action_dim: int | None = None) -> str | None:
    """Why (`low`, `high`) cannot be planning bounds, or None: sizes (= `action_dim` when given), finite in
    float32 including their span, and low < high elementwise."""
    lo, hi = list(low), list(high)
    if action_dim is not None and (len(lo) != action_dim or len(hi) != action_dim):
        return f"action_low {lo} / action_high {hi} need {action_dim} values each (the checkpoint's action_dim)"
    if len(lo) != len(hi):
        return f"action_low has {len(lo)} values but action_high has {len(hi)}"
    with np.errstate(over="ignore", invalid="ignore"):
        lo32, hi32 = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
        span = (hi32 - lo32) / 2
    if not (np.all(np.isfinite(lo32)) and np.all(np.isfinite(hi32)) and np.all(np.isfinite(span))):
        return f"action_low {lo} / action_high {hi} must be finite in float32, their span too (|bound| < ~1.7e38)"
    if not np.all(lo32 < hi32):
        return f"action_low {lo} must be < action_high {hi} elementwise"
    return None


def check_bounds(low: Sequence[float], high: Sequence[float], action_dim: int | None = None) -> None:
    """ValueError with `bounds_problem`'s reason."""
    reason = bounds_problem(low, high, action_dim)
    if reason:
        raise ValueError(reason)


def beyond_trained_range(
    low: Sequence[float],
    high: Sequence[float],
    trained_low: Sequence[float] | None,
    trained_high: Sequence[float] | None,
) -> str | None:
    """A warning when the bounds reach outside the action range the model was trained on (the checkpoint's
    meta), or None: plans there are extrapolations, and a smoothness term that grows with the action's size
    then makes zero the cheapest plan (measured: ±1e3 on the Two-Rooms model plans exactly zero)."""
    if trained_low is None or trained_high is None:
        return None
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    tlo, thi = np.asarray(trained_low, np.float64), np.asarray(trained_high, np.float64)
    if lo.shape != tlo.shape or hi.shape != thi.shape:
        return None
    tol = 1e-6 * np.maximum(1.0, np.abs(thi - tlo))
    if np.all(lo >= tlo - tol) and np.all(hi <= thi + tol):
        return None
    return (
        f"action bounds [{lo.tolist()}, {hi.tolist()}] exceed the range the model was trained on "
        f"[{tlo.tolist()}, {thi.tolist()}]: plans there are extrapolations"
    )
