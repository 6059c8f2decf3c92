"""What the stall recovery costs per replan: the Two-Rooms demo planner without it, with it idle (one
goal-distance call per replan to watch progress) and with it paying for revisits (a kernel over the
visited latents on every imagined latent), the three interleaved replan by replan on one thread.

The latents come from a real Two-Rooms episode (frames encoded by the committed model); the
`recovering` planner can never make progress (stall_progress 1e6) and a stall of one replan starts
a burst, so two of every three of its replans pay for revisits; only those are timed.

    .venv/bin/python -m bench.micro.bench_recovery [--record]

Writes `bench.record`'s recovery.json (p50 / p99 ms per replan of each case and their ratios).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench import record
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.planning import make_planner
from moejepa_ros.sim.two_rooms import TwoRoomsEnv
from testing.demo_planner import demo_planner, goal_only

DEMO = demo_planner(stall_steps=0)  # the demo with its online correction, without stall recovery
OBJECTIVES = goal_only()


@torch.no_grad()
def episode_latents(model, seed: int, steps: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Latents of a random-action Two-Rooms goal episode (frame stacks as planner_node builds them) and the goal's."""
    env = TwoRoomsEnv(mode="goal")
    obs, info = env.reset(seed=seed)
    k = int(model.cfg.frame_stack)
    frames = [obs] * k
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        out.append(model.encode(torch.from_numpy(np.stack(frames[-k:]))[None])[0].float())
        obs, *_ = env.step(rng.uniform(-2.0, 2.0, 2))
        frames.append(obs)
    goal = model.encode(torch.from_numpy(np.stack([info["goal_image"]] * k))[None])[0].float()
    return out, goal


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="checkpoints/two_rooms.safetensors")
    ap.add_argument("--replans", type=int, default=300)
    ap.add_argument("--seed", type=int, default=500, help="Two-Rooms episode seed (a tuning-range seed)")
    record.add_arguments(ap, "recovery")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, meta = load_checkpoint(a.checkpoint)
    model.eval()
    latents, goal = episode_latents(model, a.seed, 60)
    cases = {
        "off": DEMO,
        "idle": demo_planner(),  # the demo's stall recovery
        "recovering": demo_planner(stall_steps=1, stall_progress=1e6),
    }
    planners = {
        n: make_planner(c, model, OBJECTIVES, meta["action_low"], meta["action_high"]) for n, c in cases.items()
    }
    times: dict[str, list[float]] = {n: [] for n in cases}
    active = 0
    for i in range(a.replans):
        z = latents[i % len(latents)]
        for n, p in planners.items():
            t0 = time.perf_counter()
            p.plan(z, goal)
            ms = (time.perf_counter() - t0) * 1e3
            if n != "recovering" or p.recovering:  # its replans between bursts are not counted
                times[n].append(ms)
        active += int(planners["recovering"].recovering)
    res = {
        n: {"p50_ms": round(float(np.percentile(t, 50)), 3), "p99_ms": round(float(np.percentile(t, 99)), 3)}
        for n, t in times.items()
    }
    for n in ("idle", "recovering"):
        res[n]["p50_over_off"] = round(res[n]["p50_ms"] / res["off"]["p50_ms"], 3)
    report = {
        "checkpoint": a.checkpoint,
        "planner": DEMO,
        "replans": a.replans,
        "threads": 1,
        "recovering_replans": active,
        "cases": res,
    }
    record.write_result(a, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
