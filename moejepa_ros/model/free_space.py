"""FreeSpace: the map of where the robot has been, from the recorded drives' odometry in the place net's
frame.

Every pose the robot's centre reached in the bags is free for it: a grid of `resolution`-metre cells
marked where the odometry passed, closed by two cells (the gaps between drives), is a map of free space
that needs no sensor but the drives themselves. `moejepa-train pose` builds it when it keeps the place
net L (the drives share one frame then); the controller routes a goal image behind an obstacle through
it (control/route.py). Its grid shape is the model config's `relative_pose.free_space`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

MAX_CELLS = 256  # cells along the map's longer side at most


class FreeSpace(nn.Module):
    """Buffers: `grid` uint8 [rows, cols] (1 = free; row = y, column = x), `origin` (x, y) of cell [0, 0]'s
    corner and `resolution` (metres per cell)."""

    def __init__(self, shape: list[int] | tuple[int, int]):
        super().__init__()
        self.register_buffer("grid", torch.zeros(int(shape[0]), int(shape[1]), dtype=torch.uint8))
        self.register_buffer("origin", torch.zeros(2))
        self.register_buffer("resolution", torch.ones(1))

    @staticmethod
    def grid_of(xy: Tensor, resolution: float, close: int = 2) -> tuple[Tensor, Tensor, float]:
        """(grid uint8 [rows, cols], origin [2], resolution) of the positions `xy` [N, 2]: cells the positions
        fall in, closed by `close` cells (dilated, then eroded: gaps between drives filled, obstacles and the
        outline kept), with empty cells round the edge. Cells grow past `resolution` where the drives span
        more than `MAX_CELLS` of them (a route's field is computed per goal: about 0.25 s at 256 x 256)."""
        if not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f"free space: resolution={resolution!r} must be a finite number > 0")
        xy = xy[torch.isfinite(xy).all(-1)].double()
        if not len(xy):
            raise ValueError("free space: no finite positions to build it from")
        margin = close + 1
        span = float((xy.max(0).values - xy.min(0).values).max())
        resolution = max(float(resolution), math.ceil(1000 * span / (MAX_CELLS - 2 * margin - 1)) / 1000)
        # on the cell lattice, as float32 (what the buffer keeps): the cells here are the ones a reader finds
        origin = ((torch.floor(xy.min(0).values / resolution) - margin) * resolution).float().double()
        cols, rows = ((xy.max(0).values - origin) / resolution).floor().long() + margin + 1
        grid = torch.zeros(int(rows), int(cols))
        cell = ((xy - origin) / resolution).floor().long()
        grid[cell[:, 1], cell[:, 0]] = 1.0
        k = 2 * close + 1
        closed = F.max_pool2d(grid[None, None], k, 1, close)  # dilate
        closed = -F.max_pool2d(-closed, k, 1, close)[0, 0]  # erode: gaps closed, the outline kept
        return closed.to(torch.uint8), origin.float(), resolution

    def set(self, grid: Tensor, origin: Tensor, resolution: float) -> None:
        if tuple(grid.shape) != tuple(self.grid.shape):
            raise ValueError(f"free space: grid {tuple(grid.shape)} does not fit {tuple(self.grid.shape)}")
        self.grid.copy_(grid)
        self.origin.copy_(origin)
        self.resolution.fill_(float(resolution))

    def numpy(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(grid bool [rows, cols], origin [2], resolution) on the host, for routing."""
        return (
            self.grid.cpu().numpy().astype(bool),
            self.origin.cpu().numpy().astype(np.float64),
            float(self.resolution),
        )
