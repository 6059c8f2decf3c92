"""Frequency and timestamp checks of a topic, as diagnostic_updater's FrequencyStatus and TimeStampStatus
report them (same key names and summaries, so monitors that know those read ours); no rclpy here.

diagnostic_updater is not a Python wheel, so these are our own: `FrequencyCheck` counts events and,
at each diagnostics update, reports the rate over the last `window` updates against [min, max] widened
by `tolerance`; `StampCheck` keeps the earliest and latest header-stamp delay seen since the last
update against [min_acceptable, max_acceptable]. `report` returns (level, message, [(key, value)]).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from moejepa_ros.control import ERROR, OK, WARN

#: diagnostic_updater's defaults: acceptable header-stamp delay in seconds (negative = from the future).
MIN_STAMP_DELAY_S, MAX_STAMP_DELAY_S = -1.0, 5.0
#: Diagnostics updates the frequency is measured over (diagnostic_updater's default window).
WINDOW = 5

Report = tuple[int, str, list[tuple[str, str]]]


class FrequencyCheck:
    """Events per second over the last `window` reports, against [min_hz, max_hz] ± `tolerance`."""

    def __init__(self, window: int = WINDOW):
        self._lock = threading.Lock()
        self._count = 0
        now = time.monotonic()
        self._history = deque([(now, 0)] * window, maxlen=window)  # (time, count) at each report

    def tick(self) -> None:
        with self._lock:
            self._count += 1

    def report(self, min_hz: float, max_hz: float | None, tolerance: float) -> Report:
        """The check over the window; `min_hz` 0 = no lower bound, `max_hz` None = no upper bound."""
        now = time.monotonic()
        with self._lock:
            count = self._count
            t0, c0 = self._history[0]
            self._history.append((now, count))
        events, span = count - c0, max(now - t0, 1e-9)
        hz = events / span
        if events == 0:
            level, message = ERROR, "No events recorded."
        elif hz < min_hz * (1 - tolerance):
            level, message = WARN, "Frequency too low."
        elif max_hz is not None and hz > max_hz * (1 + tolerance):
            level, message = WARN, "Frequency too high."
        else:
            level, message = OK, "Desired frequency met"
        values = [
            ("Events in window", str(events)),
            ("Events since startup", str(count)),
            ("Duration of window (s)", f"{span:.6f}"),
            ("Actual frequency (Hz)", f"{hz:.6f}"),
        ]
        if max_hz is not None and min_hz == max_hz:
            values.append(("Target frequency (Hz)", f"{min_hz:.6f}"))
        if min_hz > 0:
            values.append(("Minimum acceptable frequency (Hz)", f"{min_hz * (1 - tolerance):.6f}"))
        if max_hz is not None:
            values.append(("Maximum acceptable frequency (Hz)", f"{max_hz * (1 + tolerance):.6f}"))
        return level, message, values


class StampCheck:
    """Header-stamp delay (receipt time − stamp, seconds) since the last report, against the acceptable range."""

    def __init__(self, min_acceptable: float = MIN_STAMP_DELAY_S, max_acceptable: float = MAX_STAMP_DELAY_S):
        self.min_acceptable, self.max_acceptable = min_acceptable, max_acceptable
        self._lock = threading.Lock()
        self._early = self._late = self._zero = 0  # reports that saw each problem
        self._reset()

    def _reset(self) -> None:
        self._lo, self._hi, self._zero_seen = math.inf, -math.inf, False

    def tick(self, stamp_ns: int, now_ns: int) -> None:
        """One message stamped `stamp_ns`, received at `now_ns` (same clock: the node's)."""
        with self._lock:
            if stamp_ns == 0:
                self._zero_seen = True
                return
            delay = (now_ns - stamp_ns) / 1e9
            self._lo, self._hi = min(self._lo, delay), max(self._hi, delay)

    def report(self) -> Report:
        with self._lock:
            lo, hi, zero = self._lo, self._hi, self._zero_seen
            self._reset()
            seen = hi >= lo
            problems = []
            if seen and lo < self.min_acceptable:
                self._early += 1
                problems.append("Timestamps too far in future seen.")
            if seen and hi > self.max_acceptable:
                self._late += 1
                problems.append("Timestamps too far in past seen.")
            if zero:
                self._zero += 1
                problems.append("Zero timestamp seen.")
            counts = (self._late, self._early, self._zero)
        if problems:
            level, message = ERROR, " ".join(problems)
        elif not seen:
            level, message = WARN, "No data since last update."
        else:
            level, message = OK, "Timestamps are reasonable."
        values = [
            ("Earliest timestamp delay:", f"{lo if seen else 0.0:.6f}"),
            ("Latest timestamp delay:", f"{hi if seen else 0.0:.6f}"),
            ("Earliest acceptable timestamp delay:", f"{self.min_acceptable:.6f}"),
            ("Latest acceptable timestamp delay:", f"{self.max_acceptable:.6f}"),
            ("Late diagnostic update count:", str(counts[0])),
            ("Early diagnostic update count:", str(counts[1])),
            ("Zero seen diagnostic update count:", str(counts[2])),
        ]
        return level, message, values


def merge(*reports: Report) -> Report:
    """One status of several checks (as diagnostic_updater's composite task): the worst level, the messages
    at that level, all values."""
    level = max(r[0] for r in reports)
    message = "; ".join(r[1] for r in reports if r[0] == level)
    return level, message, [kv for r in reports for kv in r[2]]
