"""The demo's pictures: Two-Rooms trajectories (PNG, matplotlib Agg) and one episode (GIF).

Both are drawn from sim_node's `~/episode_result` lines (path, goal, wall_x, door_y), so they
show exactly the states the simulator went through. GIF frames are re-rendered from the path
with the simulator's own renderer (the same pixels sim_node published), upscaled with nearest
neighbour and shown beside the goal image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moejepa_ros.sim import two_rooms as tr

OK_COLOUR, FAIL_COLOUR = "#1a9850", "#d73027"


def _walls(ax: Any, wall_x: int, door_y: int) -> None:
    """Border, central wall and door of one layout, in pixel coordinates (y down)."""
    from matplotlib.patches import Rectangle

    blue = "#3b6fd6"
    lo, hi, half = tr.ARENA_LO, tr.ARENA_HI, tr.WALL_HALF
    ax.add_patch(Rectangle((-0.5, -0.5), tr.SIZE, tr.SIZE, fill=False, ec=blue, lw=2.5))
    ax.add_patch(Rectangle((wall_x - half, lo), 2 * half, door_y - tr.DOOR_HALF - lo, color=blue))
    ax.add_patch(Rectangle((wall_x - half, door_y + tr.DOOR_HALF), 2 * half, hi - door_y - tr.DOOR_HALF, color=blue))


def draw_trajectories(results: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """One panel per episode: walls, path, start (o), goal (*); green = success, red = failure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = [r for r in results if r.get("path")]
    if not eps:
        raise ValueError("draw_trajectories: no result carries a 'path' (is the env Two-Rooms?)")
    cols = min(5, len(eps))
    rows = math.ceil(len(eps) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.5 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, r in zip(axes.flat, eps):
        p = np.asarray(r["path"], dtype=float)
        c = OK_COLOUR if r["success"] else FAIL_COLOUR
        two_rooms = "wall_x" in r and "door_y" in r
        if two_rooms:
            _walls(ax, r["wall_x"], r["door_y"])
        ax.plot(p[:, 0], p[:, 1], "-", color=c, lw=1.4)
        ax.plot(p[0, 0], p[0, 1], "o", color="black", ms=4)
        if r.get("goal"):
            ax.plot(r["goal"][0], r["goal"][1], "*", color="#f4a300", ms=11, mec="black", mew=0.5)
        if two_rooms:  # image coordinates
            ax.set_xlim(-1, tr.SIZE)
            ax.set_ylim(tr.SIZE, -1)
        ax.set_aspect("equal")
        unit = "px" if two_rooms else "m"
        mark = (
            f"reached in {r['steps']}"
            if r["success"]
            else f"{r['steps']} steps, {r.get('final_distance', 0):.2f} {unit} off"
        )
        ax.set_title(f"ep {r['episode']}: {mark}", fontsize=7.5, color=c)
    legend = "black dot = start, star = goal; green path = reached, red = not reached"
    fig.suptitle(f"{title}\n{legend}" if title else legend, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def episode_frames(result: dict[str, Any], scale: int = 4, every: int = 1) -> list[np.ndarray]:
    """[agent view | goal image] frames of one episode, upscaled `scale`x (nearest neighbour)."""
    wx, dy = int(result["wall_x"]), int(result["door_y"])
    goal = tr.render_frame(result["goal"], wx, dy)
    gap = np.full((tr.SIZE, 2, 3), 128, np.uint8)
    path = result["path"]
    idx = list(range(0, len(path), max(1, every)))
    if idx[-1] != len(path) - 1:
        idx.append(len(path) - 1)  # always show where it ended
    out = []
    for i in idx:
        frame = np.concatenate([tr.render_frame(path[i], wx, dy), gap, goal], axis=1)
        big = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
        out.append(_with_header(big, f"step {i}", "goal image", (tr.SIZE + gap.shape[1]) * scale))
    return out


def _with_header(img: np.ndarray, left: str, right: str, right_x: int, height: int = 14) -> np.ndarray:
    """A dark strip with two labels above the frame (Pillow's built-in bitmap font)."""
    from PIL import Image, ImageDraw

    bar = Image.new("RGB", (img.shape[1], height), (40, 40, 40))
    d = ImageDraw.Draw(bar)
    d.text((4, 1), left, fill=(230, 230, 230))
    d.text((right_x + 4, 1), right, fill=(230, 230, 230))
    return np.concatenate([np.asarray(bar, np.uint8), img], axis=0)


def write_episode_gif(
    result: dict[str, Any], path: str | Path, scale: int = 4, fps: float = 15.0, max_bytes: int = 1_000_000
) -> Path:
    """Animated GIF of one episode; frames are thinned until the file is below `max_bytes`."""
    import imageio.v2 as imageio

    if not result.get("path") or "goal" not in result:
        raise ValueError("write_episode_gif: the result has no 'path'/'goal' (is the env Two-Rooms?)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    every = 1
    while True:
        frames = episode_frames(result, scale, every)
        frames += [frames[-1]] * int(fps)  # hold the last frame for a second
        imageio.mimsave(path, frames, duration=1000.0 * every / fps, loop=0)
        if path.stat().st_size <= max_bytes or every >= 16:
            return path
        every *= 2
