"""Two-Rooms: does a distance between embeddings know about the wall?

For random layouts (seeds apart from training and from the planning episodes), an agent position
and a goal in the *other* room are rendered and encoded as static stacks (as the planner node
encodes a goal image). Each distance -- the model's learned goal distance (`moejepa-train goal`)
and the L2 distance between latents -- is ranked against the true shortest-path length (via the
door) and against the straight-line length. A distance that knows the wall follows the path
(Spearman near 1) more than the straight line; plain L2 follows the straight line.

A second check holds the goal fixed and moves the agent along its own room: the distance should
be smallest near the door, not at the wall point facing the goal ("door first" rate).

    .venv/bin/python -m bench.experiments.goal_distance_quality --checkpoint runs/two_rooms_goal/goal/model.safetensors

Writes goal_distance_quality.json and .png through `bench.record` (each distance over
every free position of one held-out layout, the goal in the other room).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bench import record
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.sim.two_rooms import ARENA_HI, ARENA_LO, WALL_HALF, TwoRoomsEnv, render_frame


def shortest_path(p, g, wall_x: float, door_y: float) -> float:
    """Path length from p to g: straight in one room, via the door centre otherwise."""
    if (p[0] - wall_x) * (g[0] - wall_x) > 0:
        return float(np.hypot(p[0] - g[0], p[1] - g[1]))
    return float(np.hypot(p[0] - wall_x, p[1] - door_y) + np.hypot(g[0] - wall_x, g[1] - door_y))


@torch.no_grad()
def encode_static(model, frames: list) -> torch.Tensor:
    k = model.cfg.frame_stack
    x = torch.from_numpy(np.stack(frames))[:, None].expand(-1, k, -1, -1, -1)
    return model.encode(x).float()


@torch.no_grad()
def distances(model, z: torch.Tensor, g: torch.Tensor) -> dict:
    out = {"l2": (z - g).norm(dim=-1)}
    if "goal_distance" in model.heads:
        out["learned"] = model.goal_distance(z, g)
    return {k: v.numpy() for k, v in out.items()}


@torch.no_grad()
def plot_maps(model, path: Path, seed: int) -> None:
    """Distance to one goal from every free position (1 px grid) of a held-out layout, per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = TwoRoomsEnv(mode="goal")
    _, info = env.reset(seed=seed)
    wx, dy = int(info["wall_x"]), int(info["door_y"])
    goal = (min(wx + 14.0, ARENA_HI - 2), float(np.clip(dy + 26 if dy < 32 else dy - 26, ARENA_LO + 2, ARENA_HI - 2)))
    g = encode_static(model, [render_frame(goal, wx, dy)])
    grid = np.arange(int(ARENA_LO) + 1, int(ARENA_HI))
    maps = {}
    for y in grid:
        row = [(float(x), float(y)) for x in grid]
        free = [abs(x - wx) > WALL_HALF + 0.5 or abs(y - dy) < 3 for x, _ in row]
        z = encode_static(model, [render_frame(p, wx, dy) for p in row])
        for name, d in distances(model, z, g).items():
            maps.setdefault(name, []).append(np.where(free, d, np.nan))
    maps["shortest path"] = [
        [
            shortest_path((x, y), goal, wx, dy) if abs(x - wx) > WALL_HALF + 0.5 or abs(y - dy) < 3 else np.nan
            for x in grid
        ]
        for y in grid
    ]
    names = ["shortest path", "l2", "learned"]
    names = [n for n in names if n in maps]
    fig, ax = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.3))
    for a, n in zip(np.atleast_1d(ax), names):
        m = np.asarray(maps[n], dtype=float)
        a.imshow(m, origin="lower", extent=(grid[0], grid[-1], grid[0], grid[-1]), cmap="viridis")
        a.contour(grid, grid, m, levels=12, colors="white", linewidths=0.5)
        a.plot(*goal, "r*", ms=12)
        a.set_title({"l2": "latent L2", "learned": "learned goal distance"}.get(n, n), fontsize=9)
        a.set_xticks([]), a.set_yticks([])
    fig.suptitle(f"distance to the goal (red star), held-out layout wall_x={wx} door_y={dy}", fontsize=9)
    record.save_figure(fig, path, dpi=90)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--layouts", type=int, default=50)
    ap.add_argument("--pairs", type=int, default=20, help="cross-room (agent, goal) pairs per layout")
    ap.add_argument("--first-seed", type=int, default=70000)
    record.add_arguments(ap, "goal_distance_quality")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, _ = load_checkpoint(a.checkpoint)
    model.eval()
    t0 = time.monotonic()
    rank = {"path": {}, "straight": {}}
    rows = {"path": [], "straight": [], "d": {}}
    door_first = {}
    for lay in range(a.layouts):
        env = TwoRoomsEnv(mode="goal")
        _, info = env.reset(seed=a.first_seed + lay)
        wx, dy = int(info["wall_x"]), int(info["door_y"])
        rng = np.random.default_rng(a.first_seed + lay)
        pts, goals = [], []
        for _ in range(a.pairs):
            side = rng.choice([-1, 1])
            lo, hi = (ARENA_LO, wx - WALL_HALF - 1.0) if side < 0 else (wx + WALL_HALF + 1.0, ARENA_HI)
            glo, ghi = (wx + WALL_HALF + 1.0, ARENA_HI) if side < 0 else (ARENA_LO, wx - WALL_HALF - 1.0)
            pts.append((rng.uniform(lo, hi), rng.uniform(ARENA_LO, ARENA_HI)))
            goals.append((rng.uniform(glo, ghi), rng.uniform(ARENA_LO, ARENA_HI)))
        z = encode_static(model, [render_frame(p, wx, dy) for p in pts])
        g = encode_static(model, [render_frame(q, wx, dy) for q in goals])
        for name, d in distances(model, z, g).items():
            rows["d"].setdefault(name, []).extend(d.tolist())
        rows["path"] += [shortest_path(p, q, wx, dy) for p, q in zip(pts, goals)]
        rows["straight"] += [float(np.hypot(p[0] - q[0], p[1] - q[1])) for p, q in zip(pts, goals)]
        # door first: the goal in the right room, the agent on a vertical line 6 px left of the wall
        q = (min(wx + 12.0, ARENA_HI - 1), float(np.clip(dy + rng.choice([-1, 1]) * 25, ARENA_LO + 1, ARENA_HI - 1)))
        ys = np.linspace(ARENA_LO + 1, ARENA_HI - 1, 25)
        line = encode_static(model, [render_frame((wx - 6.0, y), wx, dy) for y in ys])
        gq = encode_static(model, [render_frame(q, wx, dy)])
        for name, d in distances(model, line, gq).items():
            door_first.setdefault(name, []).append(abs(ys[int(np.argmin(d))] - dy) < abs(ys[int(np.argmin(d))] - q[1]))
    for name, d in rows["d"].items():
        rank["path"][name] = round(float(spearmanr(rows["path"], d)[0]), 3)
        rank["straight"][name] = round(float(spearmanr(rows["straight"], d)[0]), 3)
    doc = {
        "checkpoint": str(a.checkpoint),
        "layouts": a.layouts,
        "pairs_per_layout": a.pairs,
        "first_seed": a.first_seed,
        "spearman_vs_shortest_path": rank["path"],
        "spearman_vs_straight_line": rank["straight"],
        "door_first_rate": {k: round(float(np.mean(v)), 3) for k, v in door_first.items()},
        "wall_seconds": round(time.monotonic() - t0, 1),
    }
    record.write_result(a, doc)
    plot_maps(model, record.figure_path(a), a.first_seed + a.layouts)
    print("[bench]", doc, flush=True)


if __name__ == "__main__":
    main()
