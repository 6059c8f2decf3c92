"""Where Two-Rooms episodes fail: each episode's path over the learned goal distance of its layout.

Re-runs the given episode seeds with the demo's planner without stall recovery (config/sim_demo.yaml: CEM
64 x 2, 8 x 1 steps, learned goal distance over every step, online correction 64) and draws, per
episode, the model's learned distance to the goal from every free position (encoded from the
rendered frame) with the agent's path on top. A trap of the distance shows as a dark pocket
the path ends in; a trap of the dynamics as a path stuck against a wall the distance says to
go around.

    .venv/bin/python -m bench.experiments.two_rooms_failures --seeds 587 1593 2515 2523 2560 2587 2597 2599

Pick failing seeds from a tuning run's JSON (never tune on the evaluation seeds). `--set` changes
the planner, e.g. the same seeds with the stall recovery, under its own name:

    .venv/bin/python -m bench.experiments.two_rooms_failures --seeds 587 1593 2523 2560 2587 2597 2515 2599 \
        --set stall_steps=10 stall_weight=1.0 --name two_rooms_recovery

Writes two_rooms_failures.json (paths and the last actions) and .png through `bench.record`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from bench import record
from bench.experiments.two_rooms_planning import episode, make_agent, planner_sets
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.sim.two_rooms import is_free, render_frame
from testing.demo_planner import demo_planner, goal_only

DEMO = demo_planner(stall_steps=0)  # the demo's planner without stall recovery; --set adds it

GRID = np.arange(2.5, 62.0, 1.5)  # positions where the distance map is sampled (px)


@torch.no_grad()
def distance_map(model, goal_z: torch.Tensor, wall_x: int, door_y: int) -> np.ndarray:
    """The learned distance to the goal from every free grid position (NaN inside walls)."""
    grid = np.full((len(GRID), len(GRID)), np.nan)
    cells = [(i, j) for i, y in enumerate(GRID) for j, x in enumerate(GRID) if is_free(x, y, wall_x, door_y)]
    frames = np.stack([render_frame(np.array([GRID[j], GRID[i]]), wall_x, door_y) for i, j in cells])
    k = int(model.cfg.frame_stack)
    z = model.encode(torch.from_numpy(frames)[:, None].expand(-1, k, -1, -1, -1)).float()
    d = model.goal_distance(z, goal_z[None].expand(len(z), -1)).numpy()
    for (i, j), v in zip(cells, d):
        grid[i, j] = v
    return grid


def plot(eps: list[dict], maps: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(eps))
    rows = math.ceil(len(eps) / cols)
    fig, axs = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axs.ravel()[len(eps) :]:
        ax.axis("off")
    for ax, ep, grid in zip(axs.ravel(), eps, maps):
        ext = [GRID[0], GRID[-1], GRID[0], GRID[-1]]
        ax.imshow(grid, origin="lower", extent=ext, cmap="viridis")
        p = np.array(ep["path"])
        ax.plot(p[:, 0], p[:, 1], "r.-", ms=2, lw=0.6)
        ax.plot(p[0, 0], p[0, 1], "wo", ms=5)
        ax.plot(*ep["goal"], "w*", ms=10)
        ax.set_title(
            f"seed {ep['seed']}: {'reached' if ep['success'] else 'failed'}, ends {ep['final_distance']:.1f} px away",
            fontsize=8,
        )
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("learned distance to the goal (dark = near; white = wall), path in red, start o, goal *", fontsize=9)
    record.save_figure(fig, path, dpi=80)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="checkpoints/two_rooms.safetensors")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--correction-memory", type=int, default=DEMO["correction_memory"], help="(the demo's)")
    ap.add_argument(
        "--correction-action-bandwidth",
        type=float,
        default=DEMO["correction_action_bandwidth"],
        help="planner.correction_action_bandwidth (the demo's)",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="other PlannerConfig fields, e.g. stall_steps=10 stall_weight=1.0",
    )
    record.add_arguments(ap, "two_rooms_failures")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, meta = load_checkpoint(a.checkpoint)
    model.eval()
    settings = {
        **DEMO,
        "correction_memory": a.correction_memory,
        "correction_action_bandwidth": a.correction_action_bandwidth,
    }
    settings.update(planner_sets(ap, a.set))
    objectives = goal_only()
    eps, maps = [], []
    for s in a.seeds:
        agent = make_agent(model, meta, settings, objectives)
        ep = episode(agent, s, a.max_steps, trace=True)
        ep.pop("replan_ms")  # the record keeps the per-episode mean only
        eps.append(ep)
        maps.append(distance_map(model, agent.controller.goal_z, ep["wall_x"], ep["door_y"]))
        print(
            f"[failures] seed {s}: success={ep['success']} final={ep['final_distance']:.1f}px "
            f"last={np.round(ep['path'][-1], 2).tolist()}",
            flush=True,
        )
    record.write_result(a, {"checkpoint": a.checkpoint, "planner": settings, "objectives": objectives, "episodes": eps})
    plot(eps, maps, record.figure_path(a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
