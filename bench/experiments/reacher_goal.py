"""Reacher arm: reach the joint angles where a goal image was taken, from the top-down camera.

The goal-image protocol of the published anchors (the reacher `qpos_match` task: LeWM 86%, DINO-WM 79%,
PLDM 78%, at 224 px on a GPU), on our 64 px frames: train with the robot recipe's steps
(`config/recipes/reacher.yaml` on bags that `moejepa-train collect -c robot -c reacher` records as an
arm does: camera, /joint_commands, /joint_states), one model per training seed; then, per model, goal
episodes of `ReacherEnv(mode="goal")`: start at a random frame of a held-out random-torque trajectory,
the goal is its frame 25 steps later, 50 steps to reach it, success when every joint is within
0.05 rad of the goal's angles (wrapped). The planner is the shipped control step (`PlannerPolicy`:
frame stack, the goal image, encode once, plan, clamp) with planner_node's settings in
config/reacher_demo.yaml, one torch thread; ms per replan = encode + plan, as planner_node measures it.

Evaluation episodes use seeds first_seed + i (default 1000...), never the tuning seeds (500-519).

  .venv/bin/python -m bench.experiments.reacher_goal --train-seeds 0 1 2 --episodes 50

Training is resumable: each seed's run dir keeps what finished (a step whose output exists is skipped).
Writes reacher_goal.json and a picture of start, goal and reached frames through `bench.record`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench import record
from bench.experiments.mobile_base_goal import figures_of, node_plan, open_loop_ratio, train
from bench.record import ROOT, save_figure
from moejepa_ros.control import PlannerPolicy
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.share import share_path
from moejepa_ros.sim import reacher as rc
from training.recipe import load_recipe

RECIPE = load_recipe("reacher")
NODE_CONFIG = share_path("config", "reacher_demo.yaml")  # planner_node's settings: what the bench plans with


def episode(agent: PlannerPolicy, env: rc.ReacherEnv, seed: int, keep_frames: bool = False) -> dict:
    obs, info = env.reset(seed=seed)
    agent.reset()
    start, first, ms = float(info["distance"]), obs, []
    while True:
        a = agent(obs, info)
        ms.append(agent.last_decision.encode_ms + agent.last_decision.plan_ms)
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    out = {
        "seed": seed,
        "success": bool(info["success"]),
        "start_error_rad": round(start, 4),
        "final_error_rad": round(float(info["distance"]), 4),
        "steps": len(ms),
        "ms": ms,
    }
    if keep_frames:
        out["frames"] = (first, np.asarray(info["goal_image"]), obs)
    return out


def evaluate(ckpt: Path, plan: dict, seeds: list[int], pictures: int) -> dict:
    model, meta = load_checkpoint(ckpt)
    agent = PlannerPolicy(model.eval(), plan["planner"], plan["objectives"], meta["action_low"], meta["action_high"])
    env = rc.ReacherEnv(mode="goal")
    runs = []
    for i, s in enumerate(seeds):
        r = episode(agent, env, s, keep_frames=i < pictures)
        runs.append(r)
        print(
            f"[bench] {ckpt.parent.parent.name} seed {s}: success={r['success']} steps={r['steps']} "
            f"max joint error {r['start_error_rad']:.2f} -> {r['final_error_rad']:.3f} rad",
            flush=True,
        )
    env.close()
    return {**figures_of(ckpt, runs), "final_error_rad_median": float(np.median([r["final_error_rad"] for r in runs]))}


def plot(runs: list[dict], path: Path, title: str) -> None:
    """Rows of start, goal and reached frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in runs if "frames" in r]
    if not shown:
        return
    fig, axes = plt.subplots(len(shown), 3, figsize=(5.4, 1.9 * len(shown)), squeeze=False)
    for row, r in zip(axes, shown, strict=True):
        for ax, img, name in zip(row, r["frames"], ("start", "goal", "reached"), strict=True):
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if name == "reached":
                name = f"{'reached' if r['success'] else 'end'}: {r['final_error_rad']:.3f} rad"
            ax.set_title(f"seed {r['seed']} {name}" if name == "start" else name, fontsize=7)
    fig.suptitle(title, fontsize=8)
    save_figure(fig, path, dpi=110)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-dir", type=Path, default=ROOT / "runs" / "bench_reacher")
    ap.add_argument("--episodes", type=int, default=50, help="goal episodes per trained model")
    ap.add_argument("--first-seed", type=int, default=1000, help="evaluation seeds (tuning: 500)")
    ap.add_argument("--pictures", type=int, default=4, help="episodes of the first model drawn as start/goal/reached")
    ap.add_argument("--evaluate-only", action="store_true", help="use the trained models as they are; train nothing")
    ap.add_argument("--train-only", action="store_true", help="train (or finish training) the seeds' models and stop")
    ap.add_argument(
        "--plan",
        default="{}",
        help='JSON overrides of the node config, e.g. {"objectives": {"goal": {"metric": "joints"}}}',
    )
    ap.add_argument("--train-extra", nargs="*", default=[], help="key=value overrides for every training step")
    record.add_arguments(ap, "reacher_goal")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    plan = node_plan(NODE_CONFIG)
    extra = json.loads(a.plan)
    plan["planner"].update(extra.get("planner", {}))
    for name, options in extra.get("objectives", {}).items():
        plan["objectives"][name] = {**plan["objectives"].get(name, {}), **options}
    seeds = [a.first_seed + i for i in range(a.episodes)]
    runs = {s: a.train_dir / f"seed{s}" for s in a.train_seeds}
    if a.train_only:
        for s, run in runs.items():
            train(run, s, RECIPE, RECIPE.steps[0].configs, a.train_extra)
        return
    t0 = time.time()
    per_seed = {}
    for s, run in runs.items():
        ckpt = run / RECIPE.export if a.evaluate_only else train(run, s, RECIPE, RECIPE.steps[0].configs, a.train_extra)
        res = evaluate(ckpt, plan, seeds, a.pictures if not per_seed else 0)
        res["open_loop_ratio"] = open_loop_ratio(run)
        per_seed[f"seed{s}"] = res
    pictured = next(iter(per_seed.values()))["runs"]
    plot(pictured, record.figure_path(a), "reacher: start, goal image (25 steps later), where the arm ended")
    for r in pictured:
        r.pop("frames", None)
    rates = [r["success_rate"] for r in per_seed.values()]
    figures = {
        "protocol": {
            "env": "dmc:reacher (reacher_easy, target hidden, action repeat 2, top-down camera, 64x64 RGB)",
            "eval_seeds": [seeds[0], seeds[-1]],
            "goal_offset_steps": rc.GOAL_OFFSET,
            "max_steps": rc.GOAL_STEPS,
            "success": f"every joint within {rc.SUCCESS_RAD} rad of the goal's angle (wrapped)",
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
    print(
        f"[bench] success {100 * figures['success_rate']:.1f}% +- {100 * figures['success_rate_std']:.1f} "
        f"over {len(rates)} models x {a.episodes} episodes; ms/replan p50 {figures['ms_per_replan_p50']:.1f} "
        f"p99 {figures['ms_per_replan_p99']:.1f}; {out}"
    )


if __name__ == "__main__":
    main()
