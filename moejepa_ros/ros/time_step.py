"""The control time step a checkpoint was trained at, against the camera rate the node measures.

The world model predicts one latent step per training-data frame interval (`time_step_s` in the
checkpoint's `preprocessing` meta); a camera at another rate makes every predicted step a different
stretch of time, so planner_node warns once when the rates differ by more than `TOLERANCE`.
"""

from __future__ import annotations

#: Relative difference of camera rate and trained rate above which the node warns.
TOLERANCE = 0.2
#: Frames the node counts before it trusts its measured camera rate.
MIN_FRAMES = 20


def rate_mismatch(measured_hz: float, time_step_s: float | None, tolerance: float = TOLERANCE) -> str | None:
    """The warning when `measured_hz` differs from 1 / `time_step_s` by more than `tolerance`, else None."""
    if not time_step_s or time_step_s <= 0 or measured_hz <= 0:
        return None
    trained_hz = 1.0 / time_step_s
    if abs(measured_hz - trained_hz) <= tolerance * trained_hz:
        return None
    return (
        f"camera at {measured_hz:.1f} Hz but the checkpoint was trained at {trained_hz:.1f} Hz "
        f"(time_step_s {time_step_s:g}): each predicted step covers a different time than in training"
    )
