"""Route: a goal image behind an obstacle reached by way of waypoints on the drives' free-space map (goal
metric `pose` with the place net L and the model's map, model/free_space.py).

The pose cost is a straight line and the planner sees about half a metre ahead, so a goal behind a pillar
pulls the robot into it (BENCHMARKS.md section 8). With L the robot and the goal have places in one frame,
and the map says where the robot's centre can be: per goal, a geodesic distance field over the free cells
(Dijkstra from the goal's cell, 8-connected, steps within `CLEARANCE` of the map's edge cost `EDGE_COST`
times more, so routes keep off walls and pillars: the drives' map reaches right up to them); per replan,
while the straight line from the robot to the goal leaves the free cells or passes within `CLEARANCE` of
their edge, the planner's goal is a waypoint instead: the free cell within `lookahead` metres in plain
sight of the robot that is nearest the goal along the field, facing the way from the robot to it.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

EDGE_COST = 3.0  # step-cost factor on free cells within CLEARANCE of a cell the drives never reached
CLEARANCE = 0.1  # metres routes and a straight line to the goal keep off the map's edge where they can
_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (0, -1, 1.0), (-1, 0, 1.0)) + tuple(
    (dr, dc, math.sqrt(2.0)) for dr in (-1, 1) for dc in (-1, 1)
)


class Route:
    """The way to one goal position on a free-space map: `grid` bool [rows, cols] (row = y), `origin` (x, y)
    of cell [0, 0]'s corner, `resolution` m per cell, `goal_xy` in the map's frame."""

    def __init__(self, grid: np.ndarray, origin: np.ndarray, resolution: float, goal_xy: np.ndarray):
        self.grid = np.asarray(grid, bool)
        self.origin = np.asarray(origin, np.float64)
        self.resolution = float(resolution)
        if not self.grid.any():
            raise ValueError("route: the free-space map has no free cell")
        k = int(math.ceil(CLEARANCE / self.resolution))
        padded = np.pad(self.grid, k, constant_values=False)
        rows, cols = self.grid.shape
        shifts = [
            padded[k + dr : k + dr + rows, k + dc : k + dc + cols] for dr in range(-k, k + 1) for dc in range(-k, k + 1)
        ]
        self.clear = np.all(shifts, axis=0)  # free cells at least CLEARANCE from the edge
        self.goal = np.asarray(goal_xy, np.float64)[:2]
        end = self._nearest_free(self.goal)
        self.end = self._centre(np.array(end))  # the goal's free cell: goals by a wall lie off the drives' map
        self.field = self._geodesic(end)

    def _cell(self, xy: np.ndarray) -> np.ndarray:
        """(row, col) int [..., 2] of positions [..., 2] (may lie off the map)."""
        c = np.floor((np.asarray(xy, np.float64) - self.origin) / self.resolution).astype(np.int64)
        return c[..., ::-1]

    def _free(self, xy: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
        grid = self.grid if grid is None else grid
        rc = self._cell(xy)
        rows, cols = grid.shape
        inside = (rc[..., 0] >= 0) & (rc[..., 0] < rows) & (rc[..., 1] >= 0) & (rc[..., 1] < cols)
        out = np.zeros(rc.shape[:-1], bool)
        out[inside] = grid[rc[..., 0][inside], rc[..., 1][inside]]
        return out

    def _centre(self, rc: np.ndarray) -> np.ndarray:
        return self.origin + (np.asarray(rc, np.float64)[..., ::-1] + 0.5) * self.resolution

    def _nearest_free(self, xy: np.ndarray) -> tuple[int, int]:
        free = np.argwhere(self.grid)
        d = np.linalg.norm(self._centre(free) - xy, axis=-1)
        return tuple(int(v) for v in free[int(np.argmin(d))])

    def _geodesic(self, start: tuple[int, int]) -> np.ndarray:
        """Metres along free cells from `start` to every cell (inf where unreachable)."""
        g = self.grid
        rows, cols = g.shape
        step = np.where(self.clear, 1.0, EDGE_COST) * self.resolution
        dist = np.full(g.shape, np.inf)
        dist[start] = 0.0
        heap = [(0.0, start)]
        while heap:
            d, (r, c) = heapq.heappop(heap)
            if d > dist[r, c]:
                continue
            for dr, dc, length in _STEPS:
                nr, nc = r + dr, c + dc
                if 0 <= nr < rows and 0 <= nc < cols and g[nr, nc]:
                    nd = d + length * 0.5 * (step[r, c] + step[nr, nc])
                    if nd < dist[nr, nc]:
                        dist[nr, nc] = nd
                        heapq.heappush(heap, (nd, (nr, nc)))
        return dist

    def in_sight(self, a: np.ndarray, b: np.ndarray, clearance: bool = False) -> np.ndarray:
        """Whether the straight lines from `a` [2] to each of `b` [..., 2] stay on free cells (with
        `clearance`: also CLEARANCE off the map's edge, except within CLEARANCE of either end)."""
        a = np.asarray(a, np.float64)[:2]
        b = np.asarray(b, np.float64)[..., :2]
        length = np.linalg.norm(b - a, axis=-1)
        n = int(math.ceil(float(np.max(length, initial=0.0)) / (0.5 * self.resolution))) + 2
        t = np.linspace(0.0, 1.0, n)
        pts = a + (b[..., None, :] - a) * t[:, None]
        ok = self._free(pts)
        if clearance:
            along = length[..., None] * t
            inner = (along > CLEARANCE) & (length[..., None] - along > CLEARANCE)
            ok &= ~inner | self._free(pts, self.clear)
        return ok.all(-1)

    def waypoint(self, place: np.ndarray, lookahead: float) -> np.ndarray | None:
        """The planner's goal (x, y, ψ) on the way from the robot's place (x, y, ψ), or None while the goal
        is in plain sight or within `lookahead` (or the robot is off the map: the goal itself, as without one)."""
        cur = np.asarray(place, np.float64)[:2]
        if np.linalg.norm(self.goal - cur) <= lookahead or self.in_sight(cur, self.end, True) or not self._free(cur):
            return None
        r0, c0 = self._cell(cur)
        k = int(math.ceil(lookahead / self.resolution))
        rows, cols = self.grid.shape
        rr, cc = np.mgrid[max(r0 - k, 0) : min(r0 + k + 1, rows), max(c0 - k, 0) : min(c0 + k + 1, cols)]
        rc = np.stack([rr.ravel(), cc.ravel()], -1)
        rc = rc[np.isfinite(self.field[rc[:, 0], rc[:, 1]])]  # free and connected to the goal
        xy = self._centre(rc)
        near = np.linalg.norm(xy - cur, axis=-1) <= lookahead
        rc, xy = rc[near], xy[near]
        seen = self.in_sight(cur, xy) if len(xy) else np.zeros(0, bool)
        if not seen.any():
            return None
        rc, xy = rc[seen], xy[seen]
        best = xy[int(np.argmin(self.field[rc[:, 0], rc[:, 1]]))]
        d = best - cur
        return np.array([best[0], best[1], math.atan2(d[1], d[0])])
