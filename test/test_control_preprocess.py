"""control.preprocess: the training cache and planner_node make the same pixels from the same frame."""

import cv2
import numpy as np
import pytest

from moejepa_ros import codecs
from moejepa_ros.control import FrameStack, preprocess
from training.data.cache import build_cache
from training.rollouts import record_rollouts


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    record_rollouts("two_rooms", "walk", 1, root, max_steps=5, seed=4)
    return root


def node_pixels(rgb: np.ndarray, size: int) -> np.ndarray:
    """The node's path: an rgb8 Image message → codecs decode → FrameStack.push (which preprocesses)."""
    from types import SimpleNamespace

    h, w = rgb.shape[:2]
    msg = SimpleNamespace(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3, data=rgb.tobytes())
    fs = FrameStack(1, size)
    fs.push(codecs.image_to_rgb(msg))
    return fs.snapshot().frames[0]


@pytest.mark.parametrize("size", [32, 96])  # the recorded frames are 64x64: shrink and enlarge
def test_cache_and_node_make_identical_pixels(bags, tmp_path, size):
    native = build_cache(bags, tmp_path, image_size=64)
    resized = build_cache(bags, tmp_path, image_size=size)
    assert resized.image_size == (size, size)
    for i in (0, 3):
        src = np.asarray(native.frames[0][i])
        assert np.array_equal(np.asarray(resized.frames[0][i]), node_pixels(src, size))


def test_shrinking_is_opencv_area_as_the_cache_always_did():
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out = preprocess(rgb, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert np.array_equal(out, cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA))
    assert preprocess(rgb, (48, 64)).shape == (48, 64, 3)  # the cache's (H, W) form


def test_same_size_is_an_owned_contiguous_copy():
    base = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    bgr_view = base[:, :, ::-1]  # not contiguous, shares memory
    out = preprocess(bgr_view, 8)
    assert np.array_equal(out, bgr_view) and out.flags.c_contiguous and not np.shares_memory(out, base)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3))])
def test_bad_frames_and_sizes_raise_naming_them(bad):
    with pytest.raises(ValueError, match="RGB uint8"):
        preprocess(bad, 4)
    with pytest.raises(ValueError, match="size 0"):
        preprocess(np.zeros((8, 8, 3), np.uint8), 0)


def test_the_cache_workers_resize_without_importing_torch():
    """Decode workers start as `python -m training.data.shard`; torch alone would cost seconds each."""
    import subprocess
    import sys

    code = "import sys, training.data.shard; assert 'torch' not in sys.modules, 'torch imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
