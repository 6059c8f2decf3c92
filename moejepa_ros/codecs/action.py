"""Action vectors: validation (finite, 1-D), clamping into bounds, and the float32 cast that
refuses overflow. Every command type's codec goes through these."""

from __future__ import annotations

from typing import Any

import numpy as np

from moejepa_ros.codecs.errors import CodecError


def as_action(a: Any, name: str = "action") -> np.ndarray:
    """A finite, non-empty 1-D float64 vector, or a CodecError naming ``name`` and the bad values."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{name} is not numeric: {exc}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise CodecError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise CodecError(f"{name} has non-finite values at indices {bad}: {arr.tolist()}")
    return arr


def _bound(b: Any, n: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{name} is not numeric: {exc}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise CodecError(f"{name} has shape {arr.shape}, expected ({n},) to match the action")
    if np.isnan(arr).any():
        raise CodecError(f"{name} contains NaN: {arr.tolist()}")
    return arr


def clip_to_bounds(arr: np.ndarray, low: Any, high: Any) -> np.ndarray:
    """Clip a validated action into ``[low, high]`` (scalars or per-dimension), keeping its dtype."""
    lo, hi = _bound(low, arr.size, "low"), _bound(high, arr.size, "high")
    if np.any(lo > hi):
        raise CodecError(f"low={lo.tolist()} exceeds high={hi.tolist()}")
    return np.clip(arr, lo, hi)


def to_float32(values: np.ndarray, what: str) -> np.ndarray:
    """Cast to float32, refusing values that overflow to inf (e.g. 1e300 from a float64 source)."""
    with np.errstate(over="ignore"):
        out = np.asarray(values).astype(np.float32)
    if not np.isfinite(out).all():
        raise CodecError(f"{what} overflows float32: {np.asarray(values).tolist()}")
    return out


def clamp_action(a: Any, low: Any, high: Any) -> np.ndarray:
    """Clip an action vector into ``[low, high]`` (scalars or per-dimension) as float32.

    Raises CodecError on NaN/inf actions, wrong bound lengths, or ``low > high``.
    """
    return to_float32(clip_to_bounds(as_action(a), low, high), "action")
