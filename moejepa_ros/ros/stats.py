"""Rolling control-loop statistics for /diagnostics and benchmarks (thread-safe, no rclpy).

Latency windows keep the last `window` samples; rates are events per second over the last
`rate_window_s` seconds; counters only grow. Written by the image callback and the planning
thread, read by the diagnostics timer.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np


class ControlStats:
    """Counters, latency windows and event rates of one planner node."""

    def __init__(self, window: int = 300, rate_window_s: float = 2.0):
        self._lock = threading.Lock()
        self._rate_window_s = rate_window_s
        self.counters: Counter[str] = Counter()
        self._series: dict[str, deque[float]] = {}
        self._events: dict[str, deque[float]] = {}
        self._window = window

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def sample(self, name: str, value: float) -> None:
        """Add one value (e.g. a latency in ms) to the rolling window `name`."""
        with self._lock:
            self._series.setdefault(name, deque(maxlen=self._window)).append(float(value))

    def event(self, name: str, t: float | None = None) -> None:
        """Record one event (an input frame, a published command) for rate estimates."""
        t = time.monotonic() if t is None else t
        with self._lock:
            q = self._events.setdefault(name, deque())
            q.append(t)
            while q and t - q[0] > self._rate_window_s:
                q.popleft()

    def rate(self, name: str) -> float:
        """Events per second over the last `rate_window_s` seconds (0 with < 2 events)."""
        now = time.monotonic()
        with self._lock:
            q = self._events.get(name)
            if not q:
                return 0.0
            while q and now - q[0] > self._rate_window_s:
                q.popleft()
            if len(q) < 2:
                return 0.0
            span = max(now - q[0], q[-1] - q[0])
            return (len(q) - 1) / span if span > 0 else 0.0

    def percentiles(self, name: str, qs=(50, 99)) -> list[float]:
        with self._lock:
            data = list(self._series.get(name, ()))
        if not data:
            return [float("nan")] * len(qs)
        return [float(v) for v in np.percentile(np.asarray(data), qs)]

    def summary(self) -> dict[str, float]:
        """Flat dict: counters, `<series>_p50/_p99`, `<event>_hz`."""
        with self._lock:
            out: dict[str, float] = {k: float(v) for k, v in self.counters.items()}
            series, events = list(self._series), list(self._events)
        for s in series:
            p50, p99 = self.percentiles(s)
            out[f"{s}_p50"], out[f"{s}_p99"] = p50, p99
        for e in events:
            out[f"{e}_hz"] = self.rate(e)
        return out
