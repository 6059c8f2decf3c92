"""Which clock a bag's stamps come from: a message's header stamp or the recorder's log time.

A camera whose header clock disagrees with the log time (an unsynchronised clock, a constant offset, a
time-since-boot clock: header stamps near 0 s beside log times near 1.7e9 s) shifts images against
commands that carry no header (Twist), so every topic's median offset (log time - header stamp) is
measured and a disagreement beyond ``clock_tolerance_s`` is warned about with the offset. With
``stamp_source="auto"`` a bag uses header stamps when every header clock agrees with the log time, else the
log time for every topic (the one clock the recorder gives them all); "header" and "log" force one.
"""

from __future__ import annotations

import numpy as np

BOOT_CLOCK_S = 1e8  # header stamps below ~3 years next to log times above it: a time since boot


def header_or_log(header_ns: np.ndarray, log_ns: np.ndarray, source: str) -> np.ndarray:
    """The stamps under `source` ("header" or "log"); a zero header stamp means unset and falls back to log."""
    if source == "log":
        return log_ns
    return np.where(header_ns != 0, header_ns, log_ns)


def topic_check(header_ns: np.ndarray, log_ns: np.ndarray, tolerance_s: float) -> dict | None:
    """The measured offset of one topic's header clock from the log time, or None without header stamps."""
    have = header_ns != 0
    if not have.any():
        return None
    off = (log_ns[have] - header_ns[have]) / 1e9
    median = float(np.median(off))
    check = {
        "messages": int(have.sum()),
        "offset_s": round(median, 6),
        "offset_spread_s": round(float(np.percentile(off, 95) - np.percentile(off, 5)), 6),
        "agrees": abs(median) <= tolerance_s,
    }
    if np.median(header_ns[have]) < BOOT_CLOCK_S * 1e9 <= np.median(log_ns[have]):
        check["boot_clock"] = True
    return check


def choose(series: dict[str, tuple[np.ndarray, np.ndarray]], source: str, tolerance_s: float) -> tuple[str, dict]:
    """`series`: topic -> (header stamps, 0 where none, log times). Returns the source to use and the checks:
    {"stamp_source": used, "topics": {topic: check}, "warnings": [one line per disagreeing clock]}."""
    checks = {t: c for t, (h, lg) in series.items() if (c := topic_check(h, lg, tolerance_s)) is not None}
    off = {t: c for t, c in checks.items() if not c["agrees"]}
    used = source if source != "auto" else ("log" if off else "header")
    warnings = []
    for t, c in off.items():
        kind = "a time-since-boot clock" if c.get("boot_clock") else "an offset clock"
        then = "used the log time" if used == "log" else "set data.topics.stamp_source=auto or log"
        warnings.append(
            f"topic {t}: the recorder's log time is {c['offset_s']:+.3f} s from the header stamps ({kind}); {then}"
        )
    return used, {"stamp_source": used, "topics": checks, "warnings": warnings}
