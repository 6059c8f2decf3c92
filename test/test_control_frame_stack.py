"""control.FrameStack: padding at start-up, oldest-first order, resizing, clearing, thread wake-ups."""

import threading

import numpy as np
import pytest

from moejepa_ros.control import FrameStack


def full(v: int, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), v, np.uint8)


def firsts(fs: FrameStack) -> list[int]:
    return [int(f[0, 0, 0]) for f in fs.snapshot().frames]


def test_pads_with_the_oldest_frame_orders_oldest_first_and_resizes():
    fs = FrameStack(3, 8)
    assert fs.snapshot() is None and len(fs) == 0 and not fs.wait_newer(0, 0.0)
    fs.push(full(1, 16), 10, "a")  # resized 16 -> 8
    s = fs.snapshot()
    assert s.frames.shape == (3, 8, 8, 3) and s.seq == 1 and firsts(fs) == [1, 1, 1] and len(fs) == 1
    fs.push(full(2))
    assert firsts(fs) == [1, 1, 2]  # an episode start: the first frame repeated, then the new ones
    for v in (3, 4):
        fs.push(full(v), 10 * v, "b")
    s = fs.snapshot()
    assert firsts(fs) == [2, 3, 4] and s.seq == 4 and s.stamp_ns == 40 and s.frame_id == "b" and len(fs) == 3


def test_clear_starts_a_new_stack_but_keeps_counting():
    fs = FrameStack(2, 8)
    fs.push(full(1))
    fs.push(full(2))
    fs.clear()
    assert fs.snapshot() is None and len(fs) == 0
    fs.push(full(7))
    assert firsts(fs) == [7, 7] and fs.seq == 3


def test_snapshot_is_a_copy():
    fs = FrameStack(1, 8)
    fs.push(full(5))
    fs.snapshot().frames[0][:] = 0
    assert firsts(fs) == [5]


def test_a_push_from_another_thread_wakes_a_waiting_reader():
    fs = FrameStack(2, 8)
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("woke", fs.wait_newer(0, 60.0)))
    waiter.start()
    fs.push(full(1))
    waiter.join(60.0)
    assert result == {"woke": True} and fs.wait_newer(0, 0.0) and not fs.wait_newer(1, 0.0)


def test_wake_without_a_frame_lets_a_timed_wait_report_false():
    fs = FrameStack(2, 8)
    fs.wake()
    assert not fs.wait_newer(0, 0.01)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="k=0"):
        FrameStack(0, 8)
