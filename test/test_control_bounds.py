"""Action bounds: the one check of every setter, and the trained-range warning."""

from __future__ import annotations

import pytest

from moejepa_ros.control.bounds import beyond_trained_range, bounds_problem, check_bounds


@pytest.mark.parametrize(
    ("low", "high", "why"),
    [
        ([-1e308], [1e308], "finite in float32"),
        ([-2e38, 0.0], [2e38, 1.0], "finite in float32"),  # each bound is finite, their span is not
        ([float("nan")], [1.0], "finite"),
        ([0.0, 0.0], [1.0], "2 values but action_high has 1"),
        ([1.0], [0.5], "must be < action_high"),
        ([0.0], [0.0], "must be < action_high"),
    ],
)
def test_bad_bounds_are_named(low, high, why):
    reason = bounds_problem(low, high)
    assert reason is not None and why in reason, reason
    with pytest.raises(ValueError, match="action_low"):
        check_bounds(low, high)


def test_bounds_against_the_checkpoint():
    assert bounds_problem([-1.0, -2.0], [1.0, 2.0], action_dim=2) is None
    assert "need 3 values" in bounds_problem([-1.0, -2.0], [1.0, 2.0], action_dim=3)


def test_bounds_beyond_the_trained_range_warn():
    trained = ([-2.45, -2.45], [2.45, 2.45])
    assert beyond_trained_range([-1.0, -1.0], [1.0, 1.0], *trained) is None
    assert beyond_trained_range([-2.45, -2.45], [2.45, 2.45], *trained) is None
    assert "trained on" in beyond_trained_range([-1e3, -1e3], [1e3, 1e3], *trained)
    assert beyond_trained_range([-1e3], [1e3], None, None) is None  # a checkpoint without a stored range
