"""DMC from 64x64 pixels at a budget of environment frames: our Stage-3 MBRL vs published anchors.

For each task and seed: seed phase (`moejepa-train collect`, uniform random actions), first model
fit (`fit`), then `mbrl` rounds (one planner episode + re-fit each) until the frame budget;
closed-loop evaluation episodes (their own seeds, see training/mbrl.py) give the returns curve.
Optionally the model-free baseline at the same frame budget (`fit baseline.kind=sac`, SB3 SAC).
Frames = env steps x action repeat (PlaNet's repeats, moejepa_ros/sim/dmc.py); a DMC episode is
1000 frames. Every step is resumable: rerunning the same command (or a larger --frames) picks up
where the run directories stopped (collect is skipped when its bags exist, fit and mbrl resume
from their checkpoints / state.json).

    MUJOCO_GL=egl .venv/bin/python -m bench.experiments.dmc_pixels --tasks cartpole_swingup reacher_easy \\
        --frames 100000 --seeds 3 --sac-seeds 1 --threads 0        # the full benchmark (GPU box)
    .venv/bin/python -m bench.experiments.dmc_pixels --tasks cartpole_swingup --frames 20000 --seeds 1 --threads 1

Writes dmc_pixels.json (curves, timings, anchors) and .png through `bench.record`; a rerun adds its tasks and
seeds to the figures already at that path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from bench import record
from moejepa_ros.sim.dmc import ACTION_REPEAT, DEFAULT_ACTION_REPEAT

ROOT = str(record.ROOT)

EPISODE_FRAMES = 1000  # dm_control's 1000 physics steps per episode
SEED_EPISODES = 5  # PlaNet / Dreamer: 5 episodes of random actions before planning
# Returns at 100k frames: best published (TD-MPC2-era SOTA tables) / DreamerV3 / DrQ, as given in the issue.
ANCHORS = {
    "cartpole_swingup": {"best": 851, "dreamerv3": 597, "drq": 759},
    "reacher_easy": {"best": 910, "dreamerv3": 376, "drq": 601},
    "cheetah_run": {"best": 518, "dreamerv3": 308, "drq": 344},
    "walker_walk": {"best": 869, "dreamerv3": 605, "drq": 612},
}


def task_settings(task: str) -> dict:
    """Per-task overrides: episode length in env steps, reward scale 1/repeat, TD-MPC2's discount."""
    domain = task.split("_")[0] if not task.startswith("ball_in_cup") else "ball_in_cup"
    repeat = ACTION_REPEAT.get(domain, DEFAULT_ACTION_REPEAT)
    steps = EPISODE_FRAMES // repeat
    frac = steps / 5  # TD-MPC2: gamma = (T/5 - 1) / (T/5), clipped to [0.95, 0.995]
    gamma = float(min(0.995, max(0.95, (frac - 1) / frac)))
    return {"repeat": repeat, "steps": steps, "gamma": round(gamma, 4), "reward_scale": 1.0 / repeat}


def run_cli(args: list[str], env: dict, log_path: str) -> dict:
    """One `moejepa-train` command; its JSON summary (last stdout line); stderr goes to log_path."""
    cmd = [sys.executable, "-m", "training.cli"] + args
    print("$", " ".join(cmd[2:]), flush=True)
    with open(log_path, "a") as log:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed (rc {p.returncode}); see {log_path}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def overrides(task: str, seed: int, out: str, threads: int, a) -> list[str]:
    s = task_settings(task)
    return [
        f"run.out_dir={out}",
        f"run.seed={seed}",
        f"run.threads={threads}",
        "run.progress=false",
        f"collect.env=dmc:{task}",
        f"collect.max_steps={s['steps']}",
        f"mbrl.max_episode_steps={s['steps']}",
        f"eval.max_episode_steps={s['steps']}",
        f"data.reward_scale={s['reward_scale']}",
        f"model.losses.gamma={s['gamma']}",
        f"plan.planner.gamma={s['gamma']}",
        f"mbrl.eval_episodes={a.eval_episodes}",
        f"eval.closed_loop_episodes={a.eval_episodes}",
    ] + list(a.set)


def run_mbrl(task: str, seed: int, a, env: dict) -> dict:
    out = os.path.join(a.out, task, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    log_path = os.path.join(out, "bench.log")
    s = task_settings(task)
    seed_eps = max(1, min(SEED_EPISODES, a.frames // EPISODE_FRAMES - 1))
    iters = max(1, math.ceil((a.frames - seed_eps * EPISODE_FRAMES) / EPISODE_FRAMES))
    eval_every = max(1, a.eval_every // EPISODE_FRAMES)
    o = overrides(task, seed, out, a.threads, a) + [
        f"collect.episodes={seed_eps}",
        f"mbrl.iterations={iters}",
        f"mbrl.eval_every={eval_every}",
        "mbrl.episodes_per_iter=1",
    ]
    timing_path = os.path.join(out, "bench_timing.json")
    timing = json.load(open(timing_path)) if os.path.isfile(timing_path) else {}
    if not os.path.isdir(os.path.join(out, "collect", "bags")):
        r = run_cli(["collect", "-c", "dmc"] + o, env, log_path)
        timing["collect_seconds"] = r["seconds"]
    if not os.path.isfile(os.path.join(out, "fit", "model.safetensors")):
        r = run_cli(["fit", "-c", "dmc"] + o, env, log_path)
        timing["fit_seconds"] = r["seconds"]
        timing["fit_steps"] = r["step"]
    json.dump(timing, open(timing_path, "w"), indent=1)
    t = time.perf_counter()
    run_cli(["mbrl", "-c", "dmc"] + o, env, log_path)
    # accumulated over resumed calls: wall time not in the per-round splits is reported as overhead
    timing["mbrl_wall_seconds"] = round(timing.get("mbrl_wall_seconds", 0.0) + time.perf_counter() - t, 2)
    json.dump(timing, open(timing_path, "w"), indent=1)
    return summarise_mbrl(out, s)


def summarise_mbrl(out: str, s: dict) -> dict:
    """Curve + seconds per 1k frames (env / planning / training; evaluation separately) from disk."""
    state = json.load(open(os.path.join(out, "mbrl", "state.json")))
    timing = json.load(open(os.path.join(out, "bench_timing.json")))
    evals = ([state["initial_eval"]] if "initial_eval" in state else []) + [
        e["eval"] for e in state["rounds"] if "eval" in e
    ]
    curve = [
        {
            "frames": e["frames"],
            "return_mean": round(e["return_mean"], 2),
            "return_std": round(e["return_std"], 2),
            "returns": [round(x, 2) for x in e["returns"]],
            "plan_ms_mean": round(e["plan_ms_mean"], 2),
        }
        for e in evals
    ]
    rounds = state["rounds"]
    frames = rounds[-1]["frames"] if rounds else state["seed_env_steps"] * state["action_repeat"]
    env_s = timing.get("collect_seconds", 0.0) + sum(r["env_seconds"] for r in rounds)
    plan_s = sum(r["plan_seconds"] for r in rounds)
    train_s = timing.get("fit_seconds", 0.0) + sum(r["fit_seconds"] for r in rounds)
    eval_s = sum(e.get("eval_seconds", 0.0) for e in evals)
    other_s = max(
        0.0,
        timing.get("mbrl_wall_seconds", 0.0) - sum(r["collect_seconds"] + r["fit_seconds"] for r in rounds) - eval_s,
    )
    per_k = lambda x: round(1000.0 * x / max(frames, 1), 2)  # noqa: E731
    planned = sum(
        r["frames"] - (rounds[i - 1]["frames"] if i else state["seed_env_steps"] * state["action_repeat"])
        for i, r in enumerate(rounds)
    )
    return {
        "frames": frames,
        "action_repeat": state["action_repeat"],
        "rounds": len(rounds),
        "seed_frames": state["seed_env_steps"] * state["action_repeat"],
        "settings": s,
        "curve": curve,
        "seconds": {
            "env": round(env_s, 1),
            "planning": round(plan_s, 1),
            "training": round(train_s, 1),
            "evaluation": round(eval_s, 1),
            "overhead": round(other_s, 1),
        },
        "seconds_per_1k_frames": {
            "env": per_k(env_s),
            "planning": per_k(plan_s),
            "training": per_k(train_s),
            "overhead": per_k(other_s),
            "total_excl_eval": per_k(env_s + plan_s + train_s + other_s),
            "planning_per_1k_planned_frames": round(1000.0 * plan_s / max(planned, 1), 2),
        },
        "fit_steps": timing.get("fit_steps", 0) + sum(r.get("fit_steps", 0) for r in rounds),
    }


def run_sac(task: str, seed: int, a, env: dict) -> dict:
    out = os.path.join(a.out, task, f"sac_seed{seed}")
    os.makedirs(out, exist_ok=True)
    s = task_settings(task)
    res_path = os.path.join(out, "sac", "result.json")
    steps = a.frames // s["repeat"]
    if os.path.isfile(res_path) and (a.report_only or json.load(open(res_path)).get("env_steps") == steps):
        r = json.load(open(res_path))
    else:  # SB3 cannot resume from our safetensors export: a changed budget reruns from scratch
        r = run_cli(
            ["fit", "-c", "dmc", "baseline.kind=sac", f"baseline.rl_steps={steps}"]
            + overrides(task, seed, out, a.threads, a),
            env,
            os.path.join(out, "bench.log"),
        )
    steps = int(r["env_steps"])
    return {
        "frames": steps * s["repeat"],
        "env_steps": steps,
        "return_mean": round(r["eval_return_mean"], 2),
        "return_std": round(r["eval_return_std"], 2),
        "train_seconds": r["train_seconds"],
        "seconds_per_1k_frames": round(1000.0 * r["train_seconds"] / (steps * s["repeat"]), 2),
    }


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["mbrl"]) or list(results["sac"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.5, 4.8 * len(tasks)), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        runs = results["mbrl"].get(task, {})
        for seed, run in runs.items():
            c = run["curve"]
            x = np.array([p["frames"] for p in c]) / 1000
            m = np.array([p["return_mean"] for p in c])
            sd = np.array([p["return_std"] for p in c])
            ax.plot(x, m, "o-", label=f"MoE-JEPA MBRL seed {seed}")
            ax.fill_between(x, m - sd, m + sd, alpha=0.2)
        for seed, r in results["sac"].get(task, {}).items():
            ax.errorbar(
                [r["frames"] / 1000],
                [r["return_mean"]],
                [r["return_std"]],
                fmt="s",
                color="k",
                capsize=3,
                label=f"SAC pixels seed {seed}",
            )
        for (name, v), col in zip(ANCHORS.get(task, {}).items(), ("tab:green", "tab:purple", "tab:orange")):
            ax.axhline(v, ls="--", lw=0.8, color=col)
            ax.plot([100], [v], "*", color=col, ms=9, label=f"{name} @100k: {v}")
        ax.set_xlim(0, 105), ax.set_ylim(0, 1000)
        ax.set_xlabel("environment frames (k)"), ax.set_ylabel("episode return")
        ax.set_title(task), ax.legend(fontsize=6, loc="upper left")
    fig.suptitle(f"DMC from 64x64 pixels, eval return mean ± std over episodes\n{results['note']}", fontsize=8)
    record.save_figure(fig, path, dpi=90)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["cartpole_swingup", "reacher_easy"])
    ap.add_argument("--frames", type=int, default=100_000, help="environment frames per run (steps x repeat)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sac-seeds", type=int, default=1, help="SAC baseline seeds per task (0 = none)")
    ap.add_argument("--sac-tasks", nargs="*", default=None, help="tasks for SAC (default: --tasks)")
    ap.add_argument("--eval-every", type=int, default=5000, help="frames between evaluations")
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (0 = torch default)")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "dmc_pixels"))
    record.add_arguments(ap, "dmc_pixels")
    ap.add_argument("--note", default="", help="free text stored with the results (machine, budget)")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the JSON + PNG from the run directories without running anything",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra moejepa-train overrides")
    a = ap.parse_args(argv)
    if a.frames < 2 * EPISODE_FRAMES:
        ap.error(f"--frames={a.frames}: need at least {2 * EPISODE_FRAMES} (a seed episode and a planner episode)")
    unknown = [t for t in a.tasks if t not in ANCHORS]
    if unknown:
        print(f"note: no published anchors for {unknown}", file=sys.stderr)
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    if a.threads > 0:
        env.update(OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    results = record.read_figures(record.json_path(a)) if record.json_path(a).is_file() else {}
    results.update(
        threads=a.threads,
        note=a.note or results.get("note") or f"{a.frames // 1000}k frames, {a.threads} thread(s)",
        anchors_100k=ANCHORS,
    )
    if not a.report_only:  # each run's own budget is in its "frames"; the commands say how they were made
        cmd = record.command()
        results["commands"] = [c for c in results.get("commands", []) if c != cmd] + [cmd]
    results.setdefault("mbrl", {}), results.setdefault("sac", {})

    def save():
        record.write_result(a, results)
        plot(results, record.figure_path(a))

    for task in a.tasks:
        for seed in range(a.seeds):
            if a.report_only:
                out = os.path.join(a.out, task, f"seed{seed}")
                if not os.path.isfile(os.path.join(out, "mbrl", "state.json")):
                    continue
                r = summarise_mbrl(out, task_settings(task))
            else:
                r = run_mbrl(task, seed, a, env)
            results["mbrl"].setdefault(task, {})[str(seed)] = r
            save()
    for task in a.tasks if a.sac_tasks is None else a.sac_tasks:
        for seed in range(a.sac_seeds):
            if a.report_only and not os.path.isfile(os.path.join(a.out, task, f"sac_seed{seed}", "sac", "result.json")):
                continue
            results["sac"].setdefault(task, {})[str(seed)] = run_sac(task, seed, a, env)
            save()
    print(json.dumps({k: results[k] for k in ("mbrl", "sac")}, indent=1))
    return results


if __name__ == "__main__":
    main()
