"""Ground truth for the camera encodings: flat colour patches and the raw bytes a YUV 4:2:2 or a Bayer
camera would send for them, built here with numpy (not with the OpenCV the codecs decode with)."""

import numpy as np

COLOURS = np.array([[200, 30, 90], [20, 180, 240], [250, 250, 10], [5, 90, 60]], np.uint8)
BAYER_PATTERNS = ("rggb", "bggr", "gbrg", "grbg")


def patches(h: int = 16, w: int = 16, colours: np.ndarray = COLOURS) -> np.ndarray:
    """Four flat colour patches (2x2 quadrants, colours in reading order) with distinct R, G and B."""
    rgb = np.zeros((h, w, 3), np.uint8)
    for k, c in enumerate(colours):
        rgb[(k // 2) * h // 2 : (k // 2 + 1) * h // 2, (k % 2) * w // 2 : (k % 2 + 1) * w // 2] = c
    return rgb


def patch_error(out: np.ndarray, colours: np.ndarray = COLOURS, margin: int = 2) -> int:
    """The largest difference between each patch's inside (``margin`` px from its edges, where
    demosaicing mixes neighbours) and its colour."""
    h, w = out.shape[0] // 2, out.shape[1] // 2
    worst = 0
    for k, c in enumerate(colours):
        y, x = (k // 2) * h, (k % 2) * w
        inside = out[y + margin : y + h - margin, x + margin : x + w - margin].astype(int)
        worst = max(worst, int(np.abs(inside - c.astype(int)).max()))
    return worst


def uyvy(rgb: np.ndarray) -> np.ndarray:
    """RGB → packed UYVY bytes ``[H, W, 2]`` (per pixel: chroma, luma) by BT.601 studio swing, chroma
    from the even pixel of each pair. ``[..., ::-1]`` of it is YUYV."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    out = np.empty((*rgb.shape[:2], 2), np.uint8)
    out[..., 1] = np.rint(y)
    out[:, 0::2, 0] = np.rint(u[:, 0::2])
    out[:, 1::2, 0] = np.rint(v[:, 0::2])
    return out


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """The raw image of a Bayer sensor: ``pattern`` (e.g. "rggb") gives the colours of the top-left 2x2."""
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(colour)]
    return out
