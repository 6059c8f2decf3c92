"""Pixel rules shared by raw and compressed images: the size limit and the mapping of
16-bit / float (depth) images to uint8."""

from __future__ import annotations

import numpy as np

from moejepa_ros.codecs.errors import CodecError

#: Largest accepted image side in pixels; anything bigger is treated as a corrupt header.
MAX_SIDE = 16384


def scale_to_u8(arr: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
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
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise CodecError(f"value_range={value_range!r} must be a pair (lo, hi)") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise CodecError(f"value_range={value_range!r} must be finite with hi > lo")
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    out = (a - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    np.clip(out, 0.0, 255.0, out=out)
    if a.dtype.kind == "f":
        out[~(finite if finite is not None else np.isfinite(a))] = 0.0
    return np.rint(out, out=out).astype(np.uint8)
