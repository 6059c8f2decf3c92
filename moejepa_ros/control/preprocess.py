"""`preprocess`: the one resize that makes a decoded RGB frame model-ready, at train and serve time.

The training cache (`training/data/shard.py`) and planner_node both call it, so a checkpoint sees
at run time exactly the pixels it was trained on. The rule is OpenCV's INTER_AREA in both
directions: area averaging when shrinking (recorded frames are usually larger than the model's
input), and OpenCV's area interpolation (nearest-like inside a source pixel, linear at its edges)
when enlarging. It is the rule every existing cache was built with, so old caches stay valid.
"""

from __future__ import annotations

import numpy as np


def preprocess(rgb: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """RGB uint8 [h, w, 3] → a new C-contiguous uint8 [H, W, 3]; `size` is S (square) or (H, W).

    Always a copy (a decoded frame may share memory with its message), resized with INTER_AREA
    when the size differs.
    """
    h, w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"preprocess: size {size!r} must be >= 1")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"preprocess: expected an RGB uint8 [h, w, 3] frame, got {rgb.dtype} {rgb.shape}")
    if rgb.shape[:2] == (h, w):
        return np.array(rgb, order="C", copy=True)
    import cv2

    return cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=cv2.INTER_AREA)
