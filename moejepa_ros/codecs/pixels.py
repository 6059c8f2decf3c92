"""Pixel rules shared by raw and compressed images: the size limit and the mapping of
16-bit / float grey images (depth, mono16) to uint8 through a fixed, configurable range."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from moejepa_ros.codecs.errors import CodecError

#: Largest accepted image side in pixels; anything bigger is treated as a corrupt header.
MAX_SIDE = 16384

#: Default ranges, as cv_bridge draws these images: depth 0..10 m, other 16-bit grey its full scale.
DEPTH_RANGE = (0.0, 10.0)
MONO16_RANGE = (0.0, 65535.0)


def _range(value: Any, name: str) -> tuple[float, float] | None:
    """`[lo, hi]` → a checked pair; `None` or `[]` → None (each frame's own min–max)."""
    if value is None:
        return None
    try:
        vals = [float(v) for v in value]
    except (TypeError, ValueError):
        raise CodecError(f"{name}={value!r} must be [lo, hi] or [] (per-frame min-max)") from None
    if not vals:
        return None
    if len(vals) != 2 or not (np.isfinite(vals[0]) and np.isfinite(vals[1]) and vals[1] > vals[0]):
        raise CodecError(f"{name}={list(value)!r} must be [lo, hi], finite with hi > lo, or [] (per-frame min-max)")
    return vals[0], vals[1]


@dataclasses.dataclass(frozen=True)
class GreyRanges:
    """The values mapped to 0..255 for 1-channel 16-bit / float images, fixed so that a pixel means the
    same distance (brightness) in every frame and in training and deployment alike; None = each frame's
    own finite min–max. ``depth`` is in metres (16UC1 in mm, 32FC1 in m, compressedDepth); ``mono16`` in
    raw counts (mono16, a 16-bit grey PNG)."""

    depth: tuple[float, float] | None = DEPTH_RANGE
    mono16: tuple[float, float] | None = MONO16_RANGE

    def __post_init__(self):
        object.__setattr__(self, "depth", _range(self.depth, "depth_range"))
        object.__setattr__(self, "mono16", _range(self.mono16, "mono16_range"))

    def to_dict(self) -> dict[str, list[float] | None]:
        """The checkpoint's / cache's form: ``{"depth_range": [lo, hi] | None, "mono16_range": ...}``."""
        return {
            k: None if v is None else list(v) for k, v in (("depth_range", self.depth), ("mono16_range", self.mono16))
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> GreyRanges:
        """From a checkpoint's preprocessing meta; a missing key takes the default."""
        d = d or {}
        return cls(d.get("depth_range", DEPTH_RANGE), d.get("mono16_range", MONO16_RANGE))

    def overridden(self, depth: Any = None, mono16: Any = None) -> tuple[GreyRanges, list[str]]:
        """These (a checkpoint's) ranges with the given ones (node parameters; None = keep) put over them,
        and one warning for each that differs from what the model was trained with."""
        new = GreyRanges(self.depth if depth is None else depth, self.mono16 if mono16 is None else mono16)
        said = lambda r: "per-frame min-max" if r is None else str(list(r))  # noqa: E731
        warnings = [
            f"{name}={said(mine)} differs from the checkpoint's {said(old)}: "
            "the model sees other pixel values than it was trained on"
            for name, mine, old in (("depth_range", new.depth, self.depth), ("mono16_range", new.mono16, self.mono16))
            if mine != old
        ]
        return new, warnings


def grey_to_u8(arr: np.ndarray, kind: str, ranges: GreyRanges) -> np.ndarray:
    """A 1-channel 16-bit / float image to uint8 by its kind: "depth_mm" (16UC1), "depth_m" (32FC1)
    or "mono16"; depth ranges are in metres, so 16UC1 and 32FC1 of one scene give the same pixels."""
    if kind == "mono16":
        return _scale_to_u8(arr, ranges.mono16)
    r = ranges.depth
    return _scale_to_u8(arr, r if r is None or kind == "depth_m" else (r[0] * 1000.0, r[1] * 1000.0))


def _scale_to_u8(arr: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Map a 1-channel 16-bit/float image to uint8: fixed ``(lo, hi)`` or per-frame min–max.

    Non-finite values (NaN depth = no return) become 0.
    """
    a = arr.astype(np.float32, copy=False)
    finite = None
    if value_range is None:
        lo, hi = float(a.min()), float(a.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = np.isfinite(a)
            if not finite.any():
                return np.zeros(a.shape, np.uint8)
            lo, hi = float(a[finite].min()), float(a[finite].max())
    else:
        lo, hi = value_range
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    out = (a - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    np.clip(out, 0.0, 255.0, out=out)
    if a.dtype.kind == "f":
        out[~(finite if finite is not None else np.isfinite(a))] = 0.0
    return np.rint(out, out=out).astype(np.uint8)
