"""`GoalProgress`: the replan count behind the stall recovery and planner_node's goal-progress diagnostics."""

import math

from moejepa_ros.planning.progress import GoalProgress


def test_only_a_drop_of_at_least_progress_resets_the_count():
    g = GoalProgress()
    assert g.update(10.0, 1.0) == 0 and g.best == 10.0
    for i, d in enumerate((9.8, 9.5, 9.2), 1):  # creeping down by less than 1.0 in all: no progress
        assert g.update(d, 1.0) == i
    assert g.best == 9.2 and g.ref == 10.0 and g.distance == 9.2
    assert g.update(8.9, 1.0) == 0  # 1.1 below the reference
    assert g.ref == 8.9


def test_stalled_needs_the_window_and_a_distance_beyond_min_distance():
    g = GoalProgress()
    for d in (5.0, 5.0, 5.0, 5.0):
        g.update(d, 0.5)
    assert g.since == 3
    assert g.stalled(3, 1.0) and not g.stalled(4, 1.0)
    assert not g.stalled(0, 1.0)  # window 0: off
    assert not g.stalled(3, 5.0)  # at the goal, staying put is right
    g.clear()
    assert g.since == 0 and math.isnan(g.distance) and g.best == math.inf and not g.stalled(1, 0.0)
