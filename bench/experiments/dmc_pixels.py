"""DMC from 64x64 pixels at a budget of environment frames: our Stage-3 MBRL vs published anchors.

For each task and seed: `moejepa-train mbrl -c dmc` with TD-MPC's online loop (mbrl.loop=online: 5 seed
episodes of random actions, one burst of updates on them, then one model/Q/actor update per env step of
planner episodes; the planner bootstraps with Q and is seeded by the actor) until the frame budget;
closed-loop evaluation episodes (their own seeds, see training/mbrl.py) give the returns curve.
Optionally the model-free baseline at the same frame budget (`fit baseline.kind=sac`, SB3 SAC with frame
stacking and DrQ's random shift, training/baselines.py).
Frames = env steps x action repeat (PlaNet/DrQ/TD-MPC's per-task repeats: cartpole 8, reacher 4, cheetah 4,
walker 2; moejepa_ros/sim/dmc.py); a DMC episode is 1000 frames. Every run resumes: the loop checkpoints its
agent after each episode, so rerunning the same command (or a larger --frames) continues where a seed
stopped, and a seed that reached the budget is only summarised; --pack / --unpack carry the runs between
sessions and machines (training/run_pack.py).

    MUJOCO_GL=egl .venv/bin/python -m bench.experiments.dmc_pixels --tasks cartpole_swingup reacher_easy \\
        --frames 100000 --seeds 3 --sac-seeds 1 --threads 0        # the full benchmark (GPU box)
    .venv/bin/python -m bench.experiments.dmc_pixels --tasks cartpole_swingup --frames 20000 --seeds 1 --threads 1
    ... --seed-ids 2          # only seed 2 (one process per seed; --report-only --seeds 3 gathers them)
    ... --seed-steps 5000     # TD-MPC's seed phase: 5000 env steps of random actions (cartpole: 40 episodes)
    ... --pack bench/packs/NAME        # each seed's run as a few MB (agent + actions) to commit or carry
    ... --unpack bench/packs/NAME      # another session or machine: re-render them, then go on to --frames

Writes dmc_pixels.json (per task: frames, seeds, per-seed returns at the budget and curves, return_mean,
seconds per 1k frames split into env / planning / training; command, machine, git sha) and .png through
`bench.record`; a rerun adds its tasks and seeds to the figures already at that path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

from bench import record
from moejepa_ros.sim.dmc import ACTION_REPEAT, DEFAULT_ACTION_REPEAT

ROOT = str(record.ROOT)

EPISODE_FRAMES = 1000  # dm_control's 1000 physics steps per episode
SEED_EPISODES = 5  # PlaNet / Dreamer: 5 episodes of random actions before planning
# Returns at 100k frames with the per-task action repeats above (PlaNet/DrQ/TD-MPC's convention), as the
# issue gives them: PlaNet (no value) / DrQ / TD-MPC / best published (Simoun for cartpole and reacher).
ANCHORS = {
    "cartpole_swingup": {"planet": 297, "drq": 759, "td-mpc": 770, "best": 851},
    "reacher_easy": {"planet": 20, "drq": 601, "td-mpc": 628, "best": 910},
    "cheetah_run": {"drq": 344, "best": 518},
    "walker_walk": {"drq": 612, "best": 869},
}
# The other convention, action repeat 2 on every task: not comparable frame for frame, listed apart.
ANCHORS_REPEAT_2 = {
    "cartpole_swingup": {"dreamerv3": 598, "mr.q": 477},
    "reacher_easy": {"dreamerv3": 313, "mr.q": 449},
}


def task_settings(task: str) -> dict:
    """Per-task overrides: episode length in env steps, TD-MPC2's discount."""
    domain = task.split("_")[0] if not task.startswith("ball_in_cup") else "ball_in_cup"
    repeat = ACTION_REPEAT.get(domain, DEFAULT_ACTION_REPEAT)
    steps = EPISODE_FRAMES // repeat
    frac = steps / 5  # TD-MPC2: gamma = (T/5 - 1) / (T/5), clipped to [0.95, 0.995]
    gamma = float(min(0.995, max(0.95, (frac - 1) / frac)))
    return {"repeat": repeat, "steps": steps, "gamma": round(gamma, 4)}


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
        f"model.losses.gamma={s['gamma']}",
        f"plan.planner.gamma={s['gamma']}",
        f"mbrl.eval_episodes={a.eval_episodes}",
        f"eval.closed_loop_episodes={a.eval_episodes}",
    ] + list(a.set)


def budget(frames: int, seed_eps: int = SEED_EPISODES) -> tuple[int, int]:
    """(seed episodes, planner episodes) for a frame budget and at most `seed_eps` seed episodes."""
    seed_eps = max(1, min(seed_eps, frames // EPISODE_FRAMES - 1))
    return seed_eps, max(1, math.ceil((frames - seed_eps * EPISODE_FRAMES) / EPISODE_FRAMES))


def seed_episodes(task: str, seed_steps: int) -> int:
    """Random-action episodes before planning: PlaNet's 5, or TD-MPC's seed phase of `seed_steps` env steps
    (its 5000: 40 episodes of cartpole at repeat 8, 20 of reacher at repeat 4)."""
    return SEED_EPISODES if seed_steps <= 0 else math.ceil(seed_steps / task_settings(task)["steps"])


def agent_state(out: str) -> dict | None:
    """The online loop's last checkpointed state of a seed's run directory (None before its first episode)."""
    for name in ("agent", "agent.old"):
        path = os.path.join(out, "mbrl", name, "state.json")
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)
    return None


def run_mbrl(task: str, seed: int, a, env: dict) -> dict:
    out = os.path.join(a.out, task, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    seed_eps, iters = budget(a.frames, seed_episodes(task, a.seed_steps))
    state = agent_state(out)
    if state is None or state["episodes"] < seed_eps + iters:  # a finished seed is only summarised
        o = overrides(task, seed, out, a.threads, a) + [
            "mbrl.loop=online",
            f"mbrl.seed_episodes={seed_eps}",
            f"mbrl.iterations={iters}",
            f"mbrl.eval_every={max(1, a.eval_every // EPISODE_FRAMES)}",
        ]
        run_cli(["mbrl", "-c", "dmc"] + o, env, os.path.join(out, "bench.log"))
    return summarise_mbrl(out, task_settings(task))


def summarise_mbrl(out: str, s: dict) -> dict:
    """Curve + seconds per 1k frames (env / planning / training; evaluation apart) from the agent's state."""
    state = agent_state(out)
    curve = [
        {
            "frames": e["frames"],
            "return_mean": round(e["return_mean"], 2),
            "return_std": round(e["return_std"], 2),
            "returns": [round(x, 2) for x in e["returns"]],
            "plan_ms_mean": round(e["plan_ms_mean"], 2),
        }
        for e in state["evals"]
    ]
    frames = state["env_steps"] * state["action_repeat"]
    split = {k: sum(e[f"{k}_seconds"] for e in state["log"]) for k in ("env", "planning", "training")}
    split["evaluation"] = sum(e.get("eval_seconds", 0.0) for e in state["evals"])
    per_k = {k: round(1000.0 * v / max(frames, 1), 2) for k, v in split.items()}
    per_k["total_excl_eval"] = round(per_k["env"] + per_k["planning"] + per_k["training"], 2)
    return {
        "frames": frames,
        "episodes": state["episodes"],
        "seed_episodes": sum(1 for e in state["log"] if e.get("seed")),
        "updates": state["updates"],
        "action_repeat": state["action_repeat"],
        "settings": s,
        "curve": curve,
        "train_returns": [e["return"] for e in state["log"]],
        "seconds": {k: round(v, 1) for k, v in split.items()},
        "seconds_per_1k_frames": per_k,
    }


def task_summary(task: str, runs: dict) -> dict:
    """Per task: frames, seeds, each seed's return at the budget (its last evaluation), their mean, the
    per-seed curves and the mean seconds per 1k frames."""
    seeds = sorted(runs, key=int)
    at_budget = {k: runs[k]["curve"][-1]["return_mean"] if runs[k]["curve"] else None for k in seeds}
    done = [v for v in at_budget.values() if v is not None]
    keys = ("env", "planning", "training", "evaluation", "total_excl_eval")
    return {
        "frames": min(runs[k]["frames"] for k in seeds),
        "seeds": [int(k) for k in seeds],
        "returns": at_budget,
        "return_mean": round(float(np.mean(done)), 2) if done else None,
        "curves": {k: runs[k]["curve"] for k in seeds},
        "seconds_per_1k_frames": {
            key: round(float(np.mean([runs[k]["seconds_per_1k_frames"][key] for k in seeds])), 2) for key in keys
        },
        "anchors_100k": ANCHORS.get(task, {}),
        "anchors_100k_repeat_2": ANCHORS_REPEAT_2.get(task, {}),
        "runs": runs,
    }


def run_sac(task: str, seed: int, a, env: dict) -> dict:
    out = os.path.join(a.out, task, f"sac_seed{seed}")
    os.makedirs(out, exist_ok=True)
    s = task_settings(task)
    res_path = os.path.join(out, "sac", "result.json")
    steps = a.frames // s["repeat"]
    if os.path.isfile(res_path) and (a.report_only or json.load(open(res_path)).get("env_steps", 0) >= steps):
        r = json.load(open(res_path))
    else:  # the run evaluates and checkpoints every --eval-every frames and resumes from its last one
        every = max(1, a.eval_every // s["repeat"]) if a.eval_every > 0 else 0  # 0: once, at the budget
        r = run_cli(
            ["fit", "-c", "dmc", "baseline.kind=sac", f"baseline.rl_steps={steps}", f"baseline.eval_every={every}"]
            + overrides(task, seed, out, a.threads, a),
            env,
            os.path.join(out, "bench.log"),
        )
    steps = int(r["env_steps"])
    curve = [  # runs from before the model-free loop evaluated on the way have only their end point
        {
            "frames": p["env_steps"] * s["repeat"],
            "return_mean": round(p["return_mean"], 2),
            "return_std": round(p["return_std"], 2),
            "returns": [round(x, 2) for x in p["returns"]],
        }
        for p in r.get("curve", [])
    ]
    return {
        "frames": steps * s["repeat"],
        "env_steps": steps,
        "return_mean": round(r["eval_return_mean"], 2),
        "return_std": round(r["eval_return_std"], 2),
        "curve": curve,
        "train_seconds": r["train_seconds"],
        "seconds_per_1k_frames": round(1000.0 * r["train_seconds"] / (steps * s["repeat"]), 2),
    }


def seed_mean(curves: dict) -> tuple[np.ndarray, np.ndarray]:
    """(frames, mean return over seeds) at the evaluation points every seed has reached."""
    if not curves:
        return np.zeros(0), np.zeros(0)
    by_seed = [{p["frames"]: p["return_mean"] for p in c} for c in curves.values()]
    frames = sorted(set.intersection(*(set(d) for d in by_seed)))
    return np.array(frames, float), np.array([np.mean([d[f] for d in by_seed]) for f in frames])


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"]) or list(results["sac"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.5, 4.8 * len(tasks)), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        curves = results["tasks"].get(task, {}).get("curves", {})
        for seed, c in curves.items():
            x = np.array([p["frames"] for p in c]) / 1000
            m = np.array([p["return_mean"] for p in c])
            sd = np.array([p["return_std"] for p in c])
            ax.plot(x, m, "o-", ms=3, lw=1, label=f"MoE-JEPA MBRL seed {seed}")
            ax.fill_between(x, m - sd, m + sd, alpha=0.15)
        x, mean = seed_mean(curves)
        if len(curves) > 1 and len(x):
            ax.plot(x / 1000, mean, "k-", lw=2.5, label=f"mean of {len(curves)} seeds")
        for seed, r in results["sac"].get(task, {}).items():
            c = r.get("curve") or [r]
            ax.errorbar(
                [p["frames"] / 1000 for p in c],
                [p["return_mean"] for p in c],
                [p["return_std"] for p in c],
                fmt="s:",
                ms=3,
                lw=1,
                color="0.35",
                capsize=2,
                label=f"SAC pixels seed {seed}",
            )
        colours = ("tab:red", "tab:green", "tab:purple", "tab:orange")
        for (name, v), col in zip(ANCHORS.get(task, {}).items(), colours):
            ax.axhline(v, ls="--", lw=0.8, color=col)
            ax.plot([100], [v], "*", color=col, ms=9, label=f"{name} @100k: {v}")
        ax.set_xlim(0, 105), ax.set_ylim(0, 1000)
        ax.set_xlabel("environment frames (k)"), ax.set_ylabel("episode return")
        ax.set_title(task), ax.legend(fontsize=6, loc="upper left")
    fig.suptitle(f"DMC from 64x64 pixels, eval return mean ± std over episodes\n{results['note']}", fontsize=8)
    record.save_figure(fig, path, dpi=90)


def carry_runs(a, seeds: list[int]) -> None:
    """--pack: every seed's run directory -> its pack; --unpack: its pack -> a run directory that has no run."""
    from training.run_pack import RunPackError, pack, unpack

    for task in a.tasks:
        for seed in seeds:
            out, kept = os.path.join(a.out, task, f"seed{seed}"), os.path.join(a.pack or a.unpack, task, f"seed{seed}")
            try:
                if a.pack and agent_state(out) is not None:
                    r = pack(out, kept, run_seed=seed)
                elif a.unpack and agent_state(out) is None:
                    if not os.path.isdir(kept):
                        print(f"no pack of {task} seed {seed} under {a.unpack}: it starts from the beginning")
                        continue
                    r = unpack(kept, out)
                else:
                    continue
            except RunPackError as e:
                sys.exit(f"dmc_pixels: {task} seed {seed}: {e}")
            verb = "packed" if a.pack else "unpacked"
            print(f"{verb} {task} seed {seed}: {r['episodes']} episodes, {r['frames']} frames")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["cartpole_swingup", "reacher_easy"])
    ap.add_argument("--frames", type=int, default=100_000, help="environment frames per run (steps x repeat)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--seed-ids",
        type=int,
        nargs="+",
        default=None,
        help="run only these seeds (default: 0 .. --seeds-1); one "
        "process per seed spreads a benchmark over cores, and --report-only then gathers them",
    )
    ap.add_argument("--sac-seeds", type=int, default=1, help="SAC baseline seeds per task (0 = none)")
    ap.add_argument("--sac-tasks", nargs="*", default=None, help="tasks for SAC (default: --tasks)")
    ap.add_argument(
        "--sac-seed-ids", type=int, nargs="+", default=None, help="run only these SAC seeds (as --seed-ids)"
    )
    ap.add_argument(
        "--seed-steps",
        type=int,
        default=0,
        help="env steps of random actions before planning, rounded up to "
        "episodes (TD-MPC: 5000); 0 = 5 episodes (PlaNet, Dreamer)",
    )
    ap.add_argument("--eval-every", type=int, default=5000, help="frames between evaluations")
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (0 = torch default)")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "dmc_pixels"), help="run directories (resumable)")
    record.add_arguments(ap, "dmc_pixels")
    ap.add_argument("--note", default="", help="free text stored with the results (machine, budget)")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the JSON + PNG from the run directories without running anything",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra moejepa-train overrides")
    ap.add_argument(
        "--pack",
        metavar="DIR",
        help="write each seed's run to DIR/<task>/seed<N> as a run pack (training/run_pack.py: the agent, and the "
        "episodes as actions) and stop; --unpack DIR on another machine or in another session goes on from it",
    )
    ap.add_argument(
        "--unpack",
        metavar="DIR",
        help="first re-render each seed's run from its pack DIR/<task>/seed<N> where its run directory has none",
    )
    a = ap.parse_args(argv)
    mbrl_seeds = list(range(a.seeds)) if a.seed_ids is None else a.seed_ids
    if mbrl_seeds and a.frames < 2 * EPISODE_FRAMES:
        ap.error(f"--frames={a.frames}: need at least {2 * EPISODE_FRAMES} (a seed episode and a planner episode)")
    if a.frames < EPISODE_FRAMES:
        ap.error(f"--frames={a.frames}: need at least one episode ({EPISODE_FRAMES})")
    unknown = [t for t in a.tasks if t not in ANCHORS]
    if unknown:
        print(f"note: no published anchors for {unknown}", file=sys.stderr)
    if a.pack or a.unpack:
        carry_runs(a, mbrl_seeds)
        if a.pack:
            return {}
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    if a.threads > 0:
        env.update(OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    old = record.read_figures(record.json_path(a)) if record.json_path(a).is_file() else {}
    results = {k: old[k] for k in ("tasks", "sac", "commands", "note") if k in old}  # older schemas are dropped
    results.update(
        threads=a.threads,
        note=a.note or results.get("note") or f"{a.frames // 1000}k frames, {a.threads} thread(s)",
        convention="frames = env steps x action repeat (cartpole 8, reacher 4, cheetah 4, walker 2)",
    )
    if not a.report_only:  # each run's own budget is in its "frames"; the commands say how they were made
        cmd = record.command()
        results["commands"] = [c for c in results.get("commands", []) if c != cmd] + [cmd]
    results.setdefault("tasks", {}), results.setdefault("sac", {})

    def save():
        record.write_result(a, results)
        plot(results, record.figure_path(a))

    for task in a.tasks:
        runs = dict(results["tasks"].get(task, {}).get("runs", {}))
        for seed in mbrl_seeds:
            if a.report_only:
                out = os.path.join(a.out, task, f"seed{seed}")
                if agent_state(out) is None:
                    continue
                runs[str(seed)] = summarise_mbrl(out, task_settings(task))
            else:
                runs[str(seed)] = run_mbrl(task, seed, a, env)
            results["tasks"][task] = task_summary(task, runs)
            save()
    for task in a.tasks if a.sac_tasks is None else a.sac_tasks:
        for seed in range(a.sac_seeds) if a.sac_seed_ids is None else a.sac_seed_ids:
            if a.report_only and not os.path.isfile(os.path.join(a.out, task, f"sac_seed{seed}", "sac", "result.json")):
                continue
            results["sac"].setdefault(task, {})[str(seed)] = run_sac(task, seed, a, env)
            save()
    brief = {t: {k: v[k] for k in ("frames", "returns", "return_mean")} for t, v in results["tasks"].items()}
    print(json.dumps({"tasks": brief, "sac": results["sac"]}, indent=1))
    return results


if __name__ == "__main__":
    main()
