"""Stall recovery: when the goal distance stops falling, plans pay for revisiting where the robot has been."""

import pytest
import torch

from moejepa_ros.planning import PlannerConfig, make_planner
from moejepa_ros.planning.protocol import LinearLatentModel
from moejepa_ros.planning.recovery import StallRecovery

BOUND = 0.25


def world_step(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The plane with a wall segment on x = 0 for |y| < 0.5: a move crossing it there does not happen."""
    nxt = z + a.clamp(-BOUND, BOUND)
    if (z[0] < 0) != (nxt[0] < 0):
        t = -z[0] / (nxt[0] - z[0])
        if abs(float(z[1] + t * (nxt[1] - z[1]))) < 0.5:
            return z.clone()
    return nxt


def run(stall_steps: int, seed: int, steps: int = 150):
    """A wall-blind model (z' = z + a) with the online correction; the L2 goal sits just behind the wall."""
    cfg = PlannerConfig(
        method="cem",
        samples=64,
        iterations=2,
        elites=8,
        keep_elites=4,
        horizon=6,
        min_std=0.1,
        seed=seed,
        correction_memory=32,
        stall_steps=stall_steps,
        stall_weight=0.1,
        stall_bandwidth=2.0,
        stall_progress=0.05,
        stall_min_distance=0.1,
    )
    model = LinearLatentModel(torch.eye(2), torch.eye(2))
    planner = make_planner(
        cfg, model, {"goal": {"enabled": True, "metric": "l2", "every_step": True}}, [-BOUND] * 2, [BOUND] * 2
    )
    z, goal, recovered = torch.tensor([-0.3, 0.0]), torch.tensor([0.4, 0.0]), 0
    for _ in range(steps):
        z = world_step(z, planner.plan(z, goal).first_action)
        recovered += planner.recovering
        if (z - goal).norm() < 0.1:
            return True, recovered
    return False, recovered


@pytest.mark.parametrize("seed", [0, 1])
def test_a_robot_pressing_on_a_wall_goes_round_it_with_the_recovery_and_not_without(seed):
    """The correction learns the wall blocks, so the plans stop predicting a passage, but the L2 distance
    still says the spot against the wall is the nearest one: only the recovery's bursts get round."""
    stuck, on = run(stall_steps=0, seed=seed)
    assert not stuck and on == 0
    reached, on = run(stall_steps=5, seed=seed)
    assert reached and on > 0


def test_progress_resets_the_count_and_the_goal_ends_the_recovery():
    r = StallRecovery(steps=3, weight=1.0, bandwidth=1.0, progress=0.5, min_distance=1.0)
    z = torch.zeros(2)
    assert not r.update(z, 10.0)
    for d in (9.8, 9.7, 9.6):  # less than `progress` below 10: no progress
        on = r.update(z + d, d)
    assert on and r.since == 3
    assert not r.update(z, 9.4)  # 0.6 below the reference: progress, recovery off
    for d in (0.9, 0.9, 0.9, 0.9):  # stalled, but within min_distance of the goal: stay put
        assert not r.update(z, d)
    r.clear()
    assert r.visited is None and not r.active


def test_revisit_cost_is_high_where_the_robot_has_been_and_fades_away_from_it():
    r = StallRecovery(steps=1, weight=2.0, bandwidth=1.0, progress=0.1, min_distance=0.0, memory=4)
    for x in (0.0, 1.0, 2.0, 3.0, 4.0):  # memory 4 keeps x = 1..4
        r.update(torch.tensor([x, 0.0]), 5.0)
    assert len(r.visited) == 4
    disc = torch.tensor([1.0, 0.5])
    # imagined steps 0, 2 and 1: the kernel's width is their median, 1
    lat = torch.tensor([[[2.0, 0.0], [2.0, 0.0]], [[2.0, 5.0], [2.0, 7.0]], [[9.0, 9.0], [10.0, 9.0]]])
    c = r.cost(lat, disc)
    assert c.shape == (3,) and c[0] > 50 * c[1] and c[0] > 50 * c[2]
    assert float(c[0]) == pytest.approx(
        2.0 * 1.5 * float(torch.exp(-0.5 * torch.tensor([1.0, 0.0, 1.0, 4.0])).sum()), rel=1e-5
    )


def test_config_rejects_bad_recovery_settings():
    for key, value in (
        ("stall_steps", -1),
        ("stall_weight", -0.1),
        ("stall_bandwidth", 0.0),
        ("stall_progress", 0.0),
        ("stall_min_distance", float("nan")),
    ):
        with pytest.raises(ValueError, match=key):
            PlannerConfig.from_dict({key: value})
