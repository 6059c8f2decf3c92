"""control.goal_tracker: the goal pose carried over replans through the motion model and blended with each
new placement (the controller's use of it: test_control_controller)."""

import math

import numpy as np
import pytest
import torch

from moejepa_ros.control.goal_tracker import GoalTracker
from testing.models import straight_driving_model


def forward_model(step_m: float):
    return straight_driving_model(step_m, channels=[8, 8, 8, 8], hidden=16, motion_hidden=16)


def test_the_last_estimate_is_carried_through_the_motion_and_blended_with_the_new_placement():
    model, history = forward_model(0.1), torch.zeros(4, 2)
    t = GoalTracker(gain=0.5)
    assert torch.equal(t.update(torch.tensor([1.0, 0.0, 0.0]), model, history), torch.tensor([1.0, 0.0, 0.0]))
    t.executed(np.array([0.2, 0.0]))  # drove 0.1 m ahead: the goal is now 0.9 m away
    blended = t.update(torch.tensor([1.0, 0.2, 0.0]), model, history)  # a placement 0.1 m long, 0.2 m left
    assert blended.tolist() == pytest.approx([0.95, 0.1, 0.0], abs=1e-5)
    held = t.update(torch.tensor([0.95, 0.3, 0.0]), model, history)  # no command since: the estimate stays put
    assert held.tolist() == pytest.approx([0.95, 0.2, 0.0], abs=1e-5)


def test_headings_blend_across_pi_and_gain_one_or_a_long_gap_takes_the_placement_alone():
    model, history = forward_model(0.0), torch.zeros(4, 2)
    t = GoalTracker(gain=0.5)
    t.update(torch.tensor([0.0, 0.0, 3.1]), model, history)
    t.executed(np.zeros(2))
    yaw = float(t.update(torch.tensor([0.0, 0.0, -3.1]), model, history)[2])
    assert abs(yaw) == pytest.approx(math.pi, abs=1e-4)  # not 0: the two headings are 0.08 rad apart
    for _ in range(model.cfg.relative_pose.horizon + 1):  # more commands than the motion model predicts
        t.executed(np.zeros(2))
    assert t.update(torch.tensor([0.5, 0.0, 0.0]), model, history).tolist() == [0.5, 0.0, 0.0]
    one = GoalTracker(gain=1.0)
    one.update(torch.tensor([1.0, 0.0, 0.0]), model, history)
    one.executed(np.zeros(2))
    assert one.update(torch.tensor([0.3, 0.1, 0.2]), model, history).tolist() == pytest.approx([0.3, 0.1, 0.2])


def test_the_gate_clips_a_far_placement_and_leaves_a_near_one_alone():
    model, history = forward_model(0.0), torch.zeros(4, 2)
    t = GoalTracker(gain=0.5, gate=0.1)
    t.update(torch.tensor([1.0, 0.0, 0.0]), model, history)
    t.executed(np.zeros(2))
    far = t.update(torch.tensor([1.0, 0.6, 1.0]), model, history)  # a misread view: 0.6 m and 1 rad off
    assert far.tolist() == pytest.approx([1.0, 0.05, 0.5 * 0.1 / 0.3], abs=1e-5)  # moved by gain x gate
    t.executed(np.zeros(2))
    near = t.update(far + torch.tensor([0.04, -0.02, 0.1]), model, history)  # within the gate: a plain blend
    assert near.tolist() == pytest.approx((far + torch.tensor([0.02, -0.01, 0.05])).tolist(), abs=1e-5)
