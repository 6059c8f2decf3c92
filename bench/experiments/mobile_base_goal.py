"""Mobile base: reach the pose where a goal image was taken, from the robot's own camera.

The protocol of issue "a mobile base driven from its own camera": train with the robot recipe alone
(`config/recipes/robot.yaml` on bags that `moejepa-train collect -c mobile_base` records as a robot
does: camera, /cmd_vel, /odom), one model per training seed; then, per model, goal episodes of
`MobileBaseEnv(mode="goal")`: start and goal 0.5-3 body lengths apart (tier `near`) or on the two
sides of a pillar (tier `around`); success = within SUCCESS_XY m and SUCCESS_YAW rad of the goal pose
within 200 steps (13.3 s at 15 Hz). The planner is the shipped control step (`PlannerPolicy`: frame
stack, the goal image, encode once, plan, clamp) with planner_node's settings in
config/mobile_base_demo.yaml, one torch thread; ms per replan = encode + plan, as planner_node measures it.

Evaluation episodes use seeds first_seed + i (default 1000...), never the tuning seeds (500-519).

  .venv/bin/python -m bench.experiments.mobile_base_goal --train-seeds 0 1 2 --episodes 50

Training is resumable: each seed's run dir keeps what finished (a step whose output exists is skipped).
Writes mobile_base_goal.json and a picture of the paths through `bench.record`.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench import record
from bench.record import ROOT, save_figure
from moejepa_ros.control import PlannerPolicy
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.share import share_path
from moejepa_ros.sim import mobile_base as mb
from training.recipe import load_recipe, train_argv

RECIPE = load_recipe("robot")
WORLD = "mobile_base"  # the training config that records the world's bags
PATH_EVERY = 3  # odometry poses kept per drawn path: one every 0.2 s (and the last), enough to draw
NODE_CONFIG = share_path("config", "mobile_base_demo.yaml")  # planner_node's settings: what the bench plans with


def node_plan(path: Path = NODE_CONFIG) -> dict:
    """planner_node's `planner` and `objectives` parameters from the node config."""
    import yaml

    p = yaml.safe_load(path.read_text())["planner_node"]["ros__parameters"]
    return {"planner": dict(p.get("planner") or {}), "objectives": dict(p.get("objectives") or {})}


def step_done(run: Path, command: str) -> bool:
    """A recipe step whose result is already in the run dir (so a stopped bench resumes)."""
    marks = {
        "collect": run / "collect" / "bags",
        "fit": run / "fit" / "model.safetensors",
        "refine": run / "refine" / "model.safetensors",
        "goal": run / "goal" / "model.safetensors",
        "pose": run / "pose" / "model.safetensors",
        "joints": run / "joints" / "model.safetensors",
        "export": run / "export" / "model.safetensors",
        "evaluate": run / "eval" / "report.json",
    }
    p = marks.get(command)
    return p is not None and p.exists() and (not p.is_dir() or any(p.iterdir()))


def train(run: Path, seed: int, recipe=RECIPE, collect_configs=(WORLD,), extra: list[str] | None = None) -> Path:
    """Collect the world's bags (`collect_configs`), then the recipe's steps with nothing but data.bags
    (+ seed, one thread, `extra`); steps whose output is in `run` are skipped."""
    extra = [f"run.seed={seed}", "run.threads=1", "run.progress=false", *(extra or [])]
    collect = ["-m", "training.cli", "collect", *(a for c in collect_configs for a in ("-c", c))]
    if not step_done(run, "collect"):
        subprocess.run([sys.executable, *collect, f"run.out_dir={run}", *extra], cwd=ROOT, check=True)
    extra.append(f"data.bags=[{run / 'collect' / 'bags'}]")
    for step in recipe.steps:
        if step_done(run, step.command):
            continue
        argv = train_argv(step, run, extra)
        print("[bench]", " ".join(argv[2:]), flush=True)
        subprocess.run(argv, cwd=ROOT, check=True)
    return run / recipe.export


def episode(agent: PlannerPolicy, env: mb.MobileBaseEnv, seed: int, trace: bool = False) -> dict:
    obs, info = env.reset(seed=seed)
    agent.reset()
    start = (float(info["distance"]), float(info["yaw_error"]))
    ms, path = [], [np.round(info["odom"], 3).tolist()]  # mm and mrad: enough to draw, a fifth of the bytes
    while True:
        a = agent(obs, info)
        ms.append(agent.last_decision.encode_ms + agent.last_decision.plan_ms)
        obs, _, term, trunc, info = env.step(a)
        path.append(np.round(info["odom"], 3).tolist())
        if term or trunc:
            break
    out = {
        "seed": seed,
        "success": bool(info["success"]),
        "start_distance_m": round(start[0], 4),
        "start_yaw_error": round(start[1], 4),
        "final_distance_m": round(float(info["distance"]), 4),
        "final_yaw_error": round(float(info["yaw_error"]), 4),
        "steps": len(path) - 1,
        "ms": ms,
    }
    if trace:
        out.update(
            goal=np.round(info["goal_state"], 4).tolist(), path=path[:-1:PATH_EVERY] + path[-1:], path_every=PATH_EVERY
        )
    return out


def evaluate(ckpt: Path, plan: dict, tier: str, seeds: list[int], camera: str, traces: int) -> dict:
    model, meta = load_checkpoint(ckpt)
    agent = PlannerPolicy(model.eval(), plan["planner"], plan["objectives"], meta["action_low"], meta["action_high"])
    env = mb.MobileBaseEnv(mode="goal", tier=tier, camera=camera)
    runs = []
    for i, s in enumerate(seeds):
        r = episode(agent, env, s, trace=i < traces)
        runs.append(r)
        print(
            f"[bench] {ckpt.parent.parent.name} {tier} seed {s}: success={r['success']} steps={r['steps']} "
            f"final {r['final_distance_m']:.2f} m / {math.degrees(r['final_yaw_error']):.0f} deg",
            flush=True,
        )
    env.close()
    return figures_of(ckpt, runs)


def figures_of(ckpt: Path, runs: list[dict]) -> dict:
    """One model's figures from its episodes (each with `success` and its replans' `ms`, removed here)."""
    ms = np.concatenate([r.pop("ms") for r in runs])
    return {
        "checkpoint": str(ckpt),
        "episodes": len(runs),
        "success_rate": float(np.mean([r["success"] for r in runs])),
        "ms_per_replan_p50": float(np.percentile(ms, 50)),
        "ms_per_replan_p99": float(np.percentile(ms, 99)),
        "runs": runs,
    }


def open_loop_ratio(run: Path) -> dict | None:
    """The held-out open-loop ratio to copy-last at 1/5/10 steps from the run's evaluate report."""
    import json

    p = run / "eval" / "report.json"
    if not p.exists():
        return None
    v = json.loads(p.read_text()).get("verdict") or {}
    return {"horizons": v.get("horizons"), "ratio": v.get("open_loop_ratio"), "verdict": v.get("line")}


def plot(per_seed: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(per_seed)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    for ax, (name, res) in zip(axes[0], per_seed.items(), strict=True):
        h = mb.ARENA_HALF
        ax.plot([-h, h, h, -h, -h], [-h, -h, h, h, -h], "k-", lw=1)
        for px, py, pr in mb.PILLARS:
            ax.add_patch(plt.Circle((px, py), pr, color="0.5"))
        for r in res["runs"]:
            if "path" not in r:
                continue
            p = np.asarray(r["path"])
            ax.plot(p[:, 0], p[:, 1], "-", lw=0.8, color="tab:green" if r["success"] else "tab:red")
            ax.plot(p[0, 0], p[0, 1], "o", ms=3, color="k")
            g = r["goal"]
            ax.arrow(g[0], g[1], 0.15 * math.cos(g[2]), 0.15 * math.sin(g[2]), width=0.01, color="tab:blue")
        ax.set_aspect("equal")
        ax.set_xlim(-h - 0.05, h + 0.05)
        ax.set_ylim(-h - 0.05, h + 0.05)
        ax.set_title(f"{name}: {100 * res['success_rate']:.0f}% of {res['episodes']}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=90)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-dir", type=Path, default=ROOT / "runs" / "bench_mobile_base")
    ap.add_argument("--episodes", type=int, default=50, help="goal episodes per trained model")
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--tier", default="near", choices=mb.TIERS)
    ap.add_argument("--camera", default="front", choices=mb.CAMERAS)
    ap.add_argument("--traces", type=int, default=20, help="episodes per model whose paths are kept and drawn")
    ap.add_argument("--evaluate-only", action="store_true", help="use the trained models as they are; train nothing")
    ap.add_argument("--train-only", action="store_true", help="train (or finish training) the seeds' models and stop")
    ap.add_argument(
        "--jobs", type=int, default=1, help="models evaluated in parallel processes (one torch thread each)"
    )
    record.add_arguments(ap, "mobile_base_goal")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    plan = node_plan()
    seeds = [a.first_seed + i for i in range(a.episodes)]
    per_seed, t0 = {}, time.time()
    if a.train_only:
        for s in a.train_seeds:
            train(a.train_dir / f"seed{s}", s)
        return
    runs = {s: a.train_dir / f"seed{s}" for s in a.train_seeds}
    ckpts = {s: run / RECIPE.export if a.evaluate_only else train(run, s) for s, run in runs.items()}
    args = [(ckpts[s], plan, a.tier, seeds, a.camera, a.traces) for s in a.train_seeds]
    if a.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            a.jobs, mp_context=mp.get_context("spawn"), initializer=torch.set_num_threads, initargs=(1,)
        ) as ex:
            results = list(ex.map(evaluate, *zip(*args, strict=True)))
    else:
        results = [evaluate(*x) for x in args]
    for s, res in zip(a.train_seeds, results, strict=True):
        res["open_loop_ratio"] = open_loop_ratio(runs[s])
        per_seed[f"seed{s}"] = res
    rates = [r["success_rate"] for r in per_seed.values()]
    figures = {
        "protocol": {
            "tier": a.tier,
            "camera": a.camera,
            "eval_seeds": [seeds[0], seeds[-1]],
            "max_steps": mb.GOAL_STEPS,
            "success": f"within {mb.SUCCESS_XY:.3f} m and {mb.SUCCESS_YAW} rad of the goal pose",
            "goal_range_body_lengths": list(mb.GOAL_RANGE),
            "recipe": RECIPE.name,
            "plan": plan,
        },
        "success_rate": float(np.mean(rates)),
        "success_rate_std": float(np.std(rates)),
        "episodes": int(sum(r["episodes"] for r in per_seed.values())),
        "seeds": list(a.train_seeds),
        "ms_per_replan_p50": float(np.median([r["ms_per_replan_p50"] for r in per_seed.values()])),
        "ms_per_replan_p99": float(np.max([r["ms_per_replan_p99"] for r in per_seed.values()])),
        "open_loop_ratio": {k: r["open_loop_ratio"] for k, r in per_seed.items()},
        "per_seed": per_seed,
        "seconds": round(time.time() - t0, 1),
    }
    out = record.write_result(a, figures)
    plot(per_seed, record.figure_path(a), f"mobile base, tier {a.tier}: paths to goal poses (green = reached)")
    print(
        f"[bench] success {100 * figures['success_rate']:.1f}% +- {100 * figures['success_rate_std']:.1f} "
        f"over {len(rates)} models x {a.episodes} episodes; ms/replan p50 {figures['ms_per_replan_p50']:.1f} "
        f"p99 {figures['ms_per_replan_p99']:.1f}; {out}"
    )


if __name__ == "__main__":
    main()
