"""The frequency and timestamp checks behind planner_node's topic statuses (diagnostic_updater's conventions)."""

from __future__ import annotations

import pytest

from moejepa_ros.ros.topic_checks import FrequencyCheck, StampCheck, merge

OK, WARN, ERROR = 0, 1, 2
S = 1_000_000_000


def hz_report(n_events: int, min_hz: float, max_hz: float | None, window_s: float, monkeypatch) -> tuple:
    """A check that saw `n_events` over `window_s` seconds of a fake steady clock."""
    now = [100.0]
    monkeypatch.setattr("moejepa_ros.ros.topic_checks.time.monotonic", lambda: now[0])
    check = FrequencyCheck(window=2)
    for _ in range(n_events):
        check.tick()
    now[0] += window_s
    return check.report(min_hz, max_hz, 0.1)


@pytest.mark.parametrize(
    "events, bounds, level, message",
    [
        (0, (10.0, 10.0), ERROR, "No events recorded."),
        (50, (10.0, 10.0), WARN, "Frequency too low."),  # 5 Hz
        (150, (10.0, 10.0), WARN, "Frequency too high."),  # 15 Hz
        (105, (10.0, 10.0), OK, "Desired frequency met"),  # within 10 %
        (1000, (0.0, None), OK, "Desired frequency met"),  # no bounds: only "some events"
    ],
)
def test_frequency_check_levels(events, bounds, level, message, monkeypatch):
    got_level, got_message, values = hz_report(events, *bounds, window_s=10.0, monkeypatch=monkeypatch)
    assert (got_level, got_message) == (level, message)
    kv = dict(values)
    assert float(kv["Actual frequency (Hz)"]) == pytest.approx(events / 10.0)
    assert kv["Events in window"] == str(events)
    if bounds[1] is not None:
        assert float(kv["Target frequency (Hz)"]) == 10.0
        assert float(kv["Minimum acceptable frequency (Hz)"]) == pytest.approx(9.0)
        assert float(kv["Maximum acceptable frequency (Hz)"]) == pytest.approx(11.0)
    else:
        assert "Maximum acceptable frequency (Hz)" not in kv and "Minimum acceptable frequency (Hz)" not in kv


def test_frequency_is_measured_over_the_last_reports_only(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("moejepa_ros.ros.topic_checks.time.monotonic", lambda: now[0])
    check = FrequencyCheck(window=2)
    for _ in range(100):  # a burst, then silence for two reports: it leaves the window
        check.tick()
    for _ in range(2):
        now[0] += 1.0
        check.report(1.0, None, 0.1)
    now[0] += 1.0
    level, message, values = check.report(1.0, None, 0.1)
    assert (level, message) == (ERROR, "No events recorded.")
    assert dict(values)["Events since startup"] == "100"


def test_stamp_check_reports_delays_since_the_last_update():
    check = StampCheck(min_acceptable=-1.0, max_acceptable=5.0)
    assert check.report()[:2] == (WARN, "No data since last update.")
    check.tick(10 * S, 10 * S + S // 10)  # 0.1 s old
    check.tick(10 * S, 12 * S)  # 2 s old
    level, message, values = check.report()
    assert (level, message) == (OK, "Timestamps are reasonable.")
    assert float(dict(values)["Earliest timestamp delay:"]) == pytest.approx(0.1)
    assert float(dict(values)["Latest timestamp delay:"]) == pytest.approx(2.0)
    check.tick(1 * S, 100 * S)  # 99 s old: a stale or unsynchronised camera
    check.tick(0, 100 * S)
    level, message, values = check.report()
    assert level == ERROR and "Timestamps too far in past seen." in message and "Zero timestamp seen." in message
    assert dict(values)["Late diagnostic update count:"] == "1"
    check.tick(200 * S, 100 * S)  # from the future
    level, message, values = check.report()
    assert (level, message) == (ERROR, "Timestamps too far in future seen.")
    assert (
        dict(values)["Early diagnostic update count:"] == "1" and dict(values)["Late diagnostic update count:"] == "1"
    )


def test_merge_keeps_the_worst_level_and_its_messages():
    level, message, values = merge((OK, "a", [("x", "1")]), (WARN, "b", [("y", "2")]), (WARN, "c", []))
    assert (level, message, values) == (WARN, "b; c", [("x", "1"), ("y", "2")])
