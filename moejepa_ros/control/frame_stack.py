"""`FrameStack`: the newest k preprocessed frames, the model's input, for a node or an episode loop.

planner_node's image callback calls `push` (a few hundred µs for a 480×640 frame) and returns;
its planning thread calls `snapshot` to get the last k frames (oldest first, the model's
frame-stack order), a sequence number that tells whether anything new arrived, and the newest
frame's stamp/frame_id so outputs can carry them. A single-threaded episode loop uses the same
class: `clear` + `push(first obs)` at an episode start, then `push` each step; until k frames have
arrived the oldest one is repeated, so an episode starts from its first frame repeated k times.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from .preprocess import preprocess


@dataclass
class Snapshot:
    """The newest `k` frames and where the newest one came from."""

    frames: np.ndarray  # uint8 [k, H, W, 3], oldest first (padded by repeating the oldest)
    seq: int  # count of frames pushed so far (the newest frame's number)
    stamp_ns: int  # header.stamp of the newest frame
    frame_id: str
    rx_time: float  # time.monotonic() when the newest frame was received


class FrameStack:
    """A ring of the last `k` preprocessed frames, written by callbacks, read by the planner."""

    def __init__(self, k: int, size: int):
        if k < 1 or size < 1:
            raise ValueError(f"FrameStack: k={k} and size={size} must be >= 1")
        self.k, self.size = k, size
        self._frames: deque[np.ndarray] = deque(maxlen=k)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._seq = 0
        self._stamp_ns = 0
        self._frame_id = ""
        self._rx: float | None = None

    def push(self, rgb: np.ndarray, stamp_ns: int = 0, frame_id: str = "") -> int:
        """Add one RGB frame (any size; resized here); wakes a waiting planner. Returns its seq."""
        f = preprocess(rgb, self.size)
        with self._cond:
            self._frames.append(f)
            self._seq += 1
            self._stamp_ns, self._frame_id, self._rx = int(stamp_ns), frame_id, time.monotonic()
            self._cond.notify_all()
            return self._seq

    def wait_newer(self, seq: int, timeout: float) -> bool:
        """Block until a frame newer than `seq` arrives (True) or `timeout` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seq > seq, timeout=max(0.0, timeout))

    def wake(self) -> None:
        """Wake waiters without a frame (used on shutdown)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def seq(self) -> int:
        return self._seq

    def __len__(self) -> int:
        """Frames held (0 after `clear`, at most k)."""
        with self._lock:
            return len(self._frames)

    def clear(self) -> None:
        """Forget the frames (after a camera stall or at an episode start a new stack must not mix old and new)."""
        with self._lock:
            self._frames.clear()

    def snapshot(self) -> Snapshot | None:
        """The current stack, or None before the first frame."""
        with self._lock:
            if not self._frames:
                return None
            frames = list(self._frames)
            seq, stamp, fid, rx = self._seq, self._stamp_ns, self._frame_id, self._rx
        if len(frames) < self.k:  # start-up: repeat the oldest frame, as at an episode start
            frames = [frames[0]] * (self.k - len(frames)) + frames
        return Snapshot(np.stack(frames), seq, stamp, fid, rx if rx is not None else 0.0)
