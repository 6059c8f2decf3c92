"""The free-space map of where the drives went (model/free_space.py) and routes through it (control/route.py):
gaps between drives closed and obstacles kept; a goal behind an obstacle reached by waypoints that stay on
the map; a goal in plain sight, or off the map by a wall, planned for directly; the controller's waypoints
with a model that carries a map, and the map through a checkpoint."""

import math

import numpy as np
import pytest
import torch

from moejepa_ros.control import LatentController
from moejepa_ros.control.route import Route
from moejepa_ros.model.checkpoint import load_checkpoint, save_checkpoint
from moejepa_ros.model.free_space import MAX_CELLS, FreeSpace
from moejepa_ros.model.relative_pose import compose, invert, relative_pose
from testing.models import HIGH, LOW, PLANNER, tiny_model

RES = 0.05
PILLAR = (0.0, 0.0, 0.3)  # x, y, radius the robot's centre never reaches


def room_drives(n: int = 20000, seed: int = 0, gap: float = 0.0) -> torch.Tensor:
    """Positions a robot's centre reached in a 2 x 2 m room round a pillar (optionally never in a thin strip
    `gap` wide along x = 0.6: a gap between drives)."""
    xy = torch.from_numpy(np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 2))).float()
    keep = xy.norm(dim=-1) > PILLAR[2]
    if gap:
        keep &= (xy[:, 0] - 0.6).abs() > gap / 2
    return xy[keep]


def route_to(goal, xy: torch.Tensor | None = None) -> Route:
    grid, origin, _ = FreeSpace.grid_of(room_drives() if xy is None else xy, RES)
    return Route(grid.numpy().astype(bool), origin.numpy(), RES, np.asarray(goal, float))


def test_the_map_closes_gaps_between_drives_and_keeps_the_obstacle():
    grid, origin, _ = FreeSpace.grid_of(room_drives(gap=0.08), RES)
    fs = FreeSpace(list(grid.shape))
    fs.set(grid, origin, RES)
    g, o, r = fs.numpy()

    def free(x, y):
        c = np.floor((np.array([x, y]) - o) / r).astype(int)
        return bool(g[c[1], c[0]])

    assert free(0.6, 0.5) and free(0.6, -0.5)  # the 8 cm strip no drive crossed is closed
    assert not free(0.0, 0.0) and not free(0.2, 0.0)  # the pillar stays out
    assert not free(1.07, 0.0) and not free(0.0, -1.07)  # beyond the walls (the map's empty margin)
    assert o[0] < -1.0 and o[0] + r * g.shape[1] > 1.0
    wide = FreeSpace.grid_of(room_drives() * 20, RES)  # a 40 x 40 m area: cells grow to keep the map small
    assert max(wide[0].shape) <= MAX_CELLS and wide[2] > 40 / MAX_CELLS
    with pytest.raises(ValueError, match="resolution"):
        FreeSpace.grid_of(room_drives(), 0.0)
    with pytest.raises(ValueError, match="does not fit"):
        fs.set(grid[:-1], origin, RES)


def test_a_goal_behind_the_pillar_is_reached_by_waypoints_that_stay_on_the_map():
    route = route_to((0.7, 0.05))
    here = np.array([-0.7, 0.0, 0.0])  # the pillar lies on the straight line
    assert not route.in_sight(here[:2], route.end)
    path = [here]
    for _ in range(40):
        wp = route.waypoint(here, 0.35)
        if wp is None:
            break
        assert route.in_sight(here[:2], wp[:2]) and np.linalg.norm(wp[:2] - here[:2]) <= 0.35 + 1e-9
        assert math.hypot(*wp[:2]) > PILLAR[2]  # never into the pillar
        here = wp  # drive there
        path.append(here)
    assert wp is None and route.in_sight(here[:2], route.end)  # in plain sight: the goal itself from here
    assert 2 < len(path) < 10 and max(abs(p[1]) for p in path) > PILLAR[2]  # round it


def test_a_goal_in_plain_sight_or_off_the_map_by_a_wall_is_planned_for_directly():
    route = route_to((0.6, 0.8))
    assert route.waypoint(np.array([-0.6, 0.8, 0.0]), 0.35) is None  # the line passes above the pillar
    wall = route_to((0.5, 1.2))  # by the wall, where no drive went: its nearest free cell stands for it
    assert wall.end[1] < 1.05 and np.isfinite(wall.field).any()
    here = np.array([-0.5, 0.9, 0.0])  # along the wall: waypoints keep off it, then the goal itself
    for _ in range(10):
        wp = wall.waypoint(here, 0.35)
        if wp is None:
            break
        assert wp[1] < 1.0 and abs(wp[2]) < 0.6  # on the map, heading on towards the goal
        here = wp
    assert wp is None and np.linalg.norm(here[:2] - wall.goal) < 0.5
    assert route.waypoint(np.array([0.0, 0.0, 0.0]), 0.35) is None  # off the map (in the pillar): direct


def test_poses_compose_and_invert():
    a = torch.tensor([0.3, -0.2, 2.5])
    b = torch.tensor([-1.0, 0.4, -2.9])
    assert torch.allclose(compose(a, relative_pose(a, b)), b, atol=1e-5)
    assert torch.allclose(compose(a, invert(a)), torch.zeros(3), atol=1e-6)


def mapped_model(tmp_path):
    """A tiny model with a place net and the room's map, through a checkpoint."""
    parts = {"channels": [8, 8, 8, 8], "hidden": 16, "motion_hidden": 16, "place": True}
    grid, origin, _ = FreeSpace.grid_of(room_drives(), RES)
    model = tiny_model(relative_pose={**parts, "free_space": list(grid.shape)})
    model.free_space.set(grid, origin, RES)
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"action_low": LOW, "action_high": HIGH})
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.free_space.grid, grid) and loaded.cfg.relative_pose.free_space == list(grid.shape)
    return loaded


def test_the_controller_plans_to_a_waypoint_while_the_goal_is_behind_the_pillar(tmp_path):
    model = mapped_model(tmp_path)
    places = {1: torch.tensor([0.7, 0.05, 0.0]), 2: torch.tensor([-0.7, 0.0, 0.0]), 3: torch.tensor([0.6, 0.6, 0.0])}

    def place(image):  # where each test frame "was taken": its first pixel says which
        return torch.stack([places[int(i[0, 0, 0])] for i in image])

    model.place = place
    objectives = {"reward": {"enabled": False}, "goal": {"enabled": True, "metric": "pose", "pose_gain": 1.0}}
    c = LatentController(model, "cpu", {**PLANNER, "hold": 3}, objectives, LOW, HIGH)

    def frame(k):
        return np.full((64, 64, 3), k, np.uint8)

    c.set_goal(frame(1))
    assert c.route is not None and torch.allclose(c.goal_place, places[1])
    c.act(np.stack([frame(2)] * 3))
    assert c.waypoint is not None and math.hypot(*c.waypoint[:2]) > PILLAR[2]
    goal = c.pose_goal(frame(2)).pose  # the planner's goal: the waypoint in the robot's frame
    assert torch.allclose(goal, relative_pose(places[2], torch.as_tensor(c.waypoint).float()), atol=1e-5)
    c.pose_goal(frame(3))  # from (0.6, 0.6) the goal is in plain sight
    assert c.waypoint is None
    c.update(objectives={**objectives, "goal": {**objectives["goal"], "route_lookahead": 0.0}})
    c.pose_goal(frame(2))  # routes off: straight at the goal
    assert c.waypoint is None
