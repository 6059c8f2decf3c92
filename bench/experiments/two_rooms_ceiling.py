"""Two-Rooms: what our planner reaches with a *perfect* model, to separate planner/cost limits from
model limits.

The planner (the same `make_planner` CEM as the demo: 64 samples x 2 iterations, 6 held segments
x 6 steps, warm start) plans over the simulator's exact dynamics (`two_rooms.move`), with the
latent replaced by the true state [x, y, wall_x, door_y]. Two costs, each terminal-only or summed
over every step:

- `euclid`: straight-line distance to the goal (what latent L2 amounts to for a perfect encoder);
- `geodesic`: shortest-path length, via the door centre when the goal is in the other room
  (what a learned temporal distance would ideally be).

    .venv/bin/python -m bench.experiments.two_rooms_ceiling --episodes 20

Writes two_rooms_ceiling.json through `bench.record`. Episodes use the evaluation seeds (1000+).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench import record
from moejepa_ros.planning import build_objectives, make_planner
from moejepa_ros.sim.two_rooms import MAX_ACTION, TwoRoomsEnv, clip_action, move
from testing.demo_planner import plain_demo_planner

PLANNER = plain_demo_planner(horizon=6, hold=6)


class TrueDynamics(torch.nn.Module):
    """A LatentModel whose latent is the true state; `cost(z)` is the distance to `self.goal`."""

    latent_dim, action_dim = 4, 2

    def __init__(self, metric: str):
        super().__init__()
        self.metric, self.goal = metric, None

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        n, h, _ = actions.shape
        start = z0.expand(n, -1).double().numpy()
        acts = actions.double().numpy()
        out = np.empty((n, h, 4), np.float32)
        for i in range(n):
            x, y, wx, dy = start[i]
            for t in range(h):
                ax, ay = clip_action(acts[i, t])
                x, y = move(x, y, ax, ay, wx, dy)
                out[i, t] = (x, y, wx, dy)
        return torch.from_numpy(out)

    def cost(self, z: torch.Tensor) -> torch.Tensor:
        g = self.goal
        p = z[..., :2]
        straight = (p - g[:2]).norm(dim=-1)
        if self.metric == "euclid":
            return straight
        door = torch.stack([g[2], g[3]])
        same_room = (p[..., 0] - g[2]) * (g[0] - g[2]) > 0
        return torch.where(same_room, straight, (p - door).norm(dim=-1) + (door - g[:2]).norm())


def episode(metric: str, every_step: bool, seed: int, max_steps: int) -> dict:
    env = TwoRoomsEnv(mode="goal")
    _, info = env.reset(seed=seed)
    model = TrueDynamics(metric)
    model.goal = torch.tensor([*info["goal_state"][:2], info["wall_x"], info["door_y"]], dtype=torch.float32)
    planner = make_planner(
        PLANNER,
        model,
        build_objectives({"cost": {"enabled": True, "weight": 1.0, "every_step": every_step}}),
        [-MAX_ACTION] * 2,
        [MAX_ACTION] * 2,
    )
    for t in range(max_steps):
        a = planner.plan(torch.as_tensor(info["state"], dtype=torch.float32)).first_action.numpy()
        _, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    return {"seed": seed, "success": bool(info["success"]), "steps": t + 1, "final_distance": float(info["distance"])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--max-steps", type=int, default=200)
    record.add_arguments(ap, "two_rooms_ceiling")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = list(range(a.first_seed, a.first_seed + a.episodes))
    t0 = time.monotonic()
    res = {}
    for metric in ("euclid", "geodesic"):
        for every in (False, True):
            name = f"{metric}_{'every_step' if every else 'terminal'}"
            runs = [episode(metric, every, s, a.max_steps) for s in seeds]
            res[name] = {
                "success_rate": float(np.mean([r["success"] for r in runs])),
                "final_distance_mean": float(np.mean([r["final_distance"] for r in runs])),
                "runs": runs,
            }
            print(
                f"[bench] {name:22s} success {100 * res[name]['success_rate']:.0f}% "
                f"final {res[name]['final_distance_mean']:.1f} px",
                flush=True,
            )
    record.write_result(
        a,
        {
            "planner": PLANNER,
            "episodes": a.episodes,
            "first_seed": a.first_seed,
            "max_steps": a.max_steps,
            "model": "true dynamics, latent = true state",
            "wall_seconds": round(time.monotonic() - t0, 1),
            "costs": res,
        },
    )


if __name__ == "__main__":
    main()
