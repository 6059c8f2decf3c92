"""`GoalProgress`: replans since the goal distance last made progress, the count behind the stall recovery
and planner_node's "no progress toward the goal" diagnostics.

Progress is a drop of at least `progress` below the reference, the distance when progress was last made
(a slow drift down by less than that each replan does not count, so noise in d cannot hide a stall).
"""

from __future__ import annotations

import math


class GoalProgress:
    """The goal distance per replan: the last one, the best, and replans since the last progress."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.distance = math.nan  # the last replan's goal distance
        self.best = math.inf  # the smallest seen since clear()
        self.ref = math.inf  # the goal distance when progress was last made
        self.since = 0  # replans since then

    def update(self, distance: float, progress: float) -> int:
        """Record one replan's goal distance; returns the replans since the last drop of >= `progress`."""
        self.distance = distance
        self.best = min(self.best, distance)
        if distance < self.ref - progress or self.ref == math.inf:
            self.ref, self.since = distance, 0
        else:
            self.since += 1
        return self.since

    def stalled(self, window: int, min_distance: float) -> bool:
        """No progress for `window` replans (0 = never) while still farther than `min_distance` from the goal."""
        return window > 0 and self.since >= window and self.distance > min_distance
