"""Two-Rooms goal reaching: CEM vs MPPI vs gradient vs CEM->gradient at a matched budget per replan.

Closed loop, one replan per env step (as planner_node does in the demo), through the shipped control
step (`moejepa_ros.control.PlannerPolicy` over `LatentController`: frame stack, goal image repeated k
times, encode once, plan, clamp, non-finite plan -> zero command); the first action is executed.
`--env two_rooms` (default), our variant (random layouts): success = squared distance < 1 px^2 within 200
steps, stricter than PLDM's DotWall protocol. `--env two_rooms_pldm`, PLDM's own rules (fixed layout, its
start/goal generator, bounce, success = mean per-coordinate squared error < 1, i.e. squared distance < 2 px^2,
200 steps), on which PLDM reports 97.8% with MPPI; training then uses that env's random walk.

  .venv/bin/python -m bench.experiments.two_rooms_planning --checkpoint checkpoints/two_rooms.safetensors \
      --episodes 20 --seeds 1 --first-seed 1000

Without --checkpoint it trains one model per `--train-seeds` seed with the demo's recipe (collect/fit/refine,
long walks, goal, export) in `--train-dir`/s<seed>, resuming after a stop;
`--no-door-crossings` trains on walks that never change rooms (RandomWalkPolicy cross_prob=0, stay_in_room).
Writes two_rooms_planning.json and .png through `bench.record`. Timings come from a shared 2-core CPU:
compare methods within one run (they run interleaved per episode).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from bench import record
from bench.record import ROOT, save_figure
from moejepa_ros.control import PlannerPolicy
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.sim.registry import GOAL_EVAL, make_env
from training.recipe import load_recipe, train_argv

DEMO = load_recipe("two_rooms_demo")  # trains a checkpoint when --checkpoint is not given

# The bench's defaults (flags change them; BENCHMARKS.md §7.1 gives the headline's flags, which plan as
# config/sim_demo.yaml does): 6 held segments x 2 steps = 12 steps of imagined reach, terminal-only goal cost.
BASE = {"horizon": 6, "hold": 2, "min_std": 0.1, "warm_start": True}
# Matched budget per replan: ~the same number of rollouts (samples x iterations = 128);
# a gradient step (forward + backward through the MoE rollout) costs far more than its sample count
# suggests on CPU, so the gradient budgets are small; see ms_per_replan in the results.
METHODS = {
    "cem": {"method": "cem", "samples": 64, "iterations": 2, "elites": 8, "keep_elites": 4},
    "mppi": {"method": "mppi", "samples": 64, "iterations": 2, "elites": 8, "keep_elites": 4, "temperature": 0.1},
    "gradient": {
        "method": "gradient",
        "samples": 16,
        "iterations": 1,
        "elites": 4,
        "keep_elites": 0,
        "grad_steps": 3,
        "grad_restarts": 2,
        "grad_lr": 0.2,
    },
    "cem_gradient": {
        "method": "cem_gradient",
        "samples": 48,
        "iterations": 2,
        "elites": 8,
        "keep_elites": 4,
        "grad_steps": 1,
        "grad_restarts": 1,
        "grad_lr": 0.1,
    },
}
OBJECTIVES = {"goal": {"enabled": True, "weight": 1.0, "metric": "l2", "every_step": False}}


def train(
    out_dir: Path,
    no_door_crossings: bool,
    steps: int | None,
    env: str = "two_rooms",
    seed: int = 0,
    recipe_steps: int | None = None,
) -> Path:
    """The demo's recipe (collect/fit/refine, long walks, goal, export) with our training CLI
    (subprocesses; one torch thread, one collect worker) on `env`'s random walk, training seed `seed`;
    `recipe_steps` runs only its first N steps (the Nth an export) and returns that export.
    Resumes after a stop: a finished step leaves `<out_dir>/recipe_done/<i>` and is skipped; fit, refine
    and goal resume from their checkpoints; an unfinished collect starts over."""
    extra = ["run.threads=1", "collect.workers=1", f"collect.env={env}", f"run.seed={seed}"]
    if no_door_crossings:
        # PLDM's ablation: no trajectory links the two rooms (no deliberate crossings, and a walk
        # that would wander through the door is mirrored back: RandomWalkPolicy stay_in_room)
        extra += ["collect.policy_kwargs.cross_prob=0", "collect.policy_kwargs.stay_in_room=true"]
    if steps:
        extra.append(f"train.steps={steps}")
    done = out_dir / "recipe_done"
    done.mkdir(parents=True, exist_ok=True)
    todo = DEMO.steps[:recipe_steps]
    if todo[-1].command != "export":
        raise ValueError(f"recipe_steps={recipe_steps}: the last step run must be an export, got {todo[-1].command}")
    for i, step in enumerate(todo):
        if (done / str(i)).exists():
            continue
        argv = train_argv(step, out_dir, extra + (["collect.overwrite=true"] if step.command == "collect" else []))
        print("[bench]", " ".join(argv[2:]), flush=True)
        subprocess.run(argv, cwd=ROOT, check=True)
        (done / str(i)).touch()
    if recipe_steps is None:
        return out_dir / DEMO.export
    dirs = [o.split("=", 1)[1] for o in todo[-1].overrides if o.startswith("run.out_dir=")]
    return Path(dirs[-1].format(run=out_dir) if dirs else out_dir) / "export" / "model.safetensors"


def make_agent(model, meta: dict, planner_cfg: dict, objectives: dict, bound: float | None = None) -> PlannerPolicy:
    """The shipped control step for one method; `bound` plans in [-bound, bound] per axis instead of the
    checkpoint's action bounds."""
    low, high = (meta["action_low"], meta["action_high"]) if bound is None else ([-bound] * 2, [bound] * 2)
    return PlannerPolicy(model, planner_cfg, objectives, low, high)


def episode(agent: PlannerPolicy, seed: int, max_steps: int, trace: bool = False, env: str = "two_rooms") -> dict:
    """One goal episode of `env` (a GOAL_EVAL name); `trace` also returns the layout, the goal, the path and
    the last actions. `replan_ms` holds each replan's time (encode + plan), as the node measures it."""
    env = make_env(env, mode="goal")
    obs, info = env.reset(seed=seed)
    agent.reset()
    start, ms, path, acts = float(info["distance"]), [], [info["pos"].tolist()], []
    for _ in range(max_steps):
        a = agent(obs, info)
        ms.append(agent.last_decision.encode_ms + agent.last_decision.plan_ms)
        obs, _, term, trunc, info = env.step(a)
        path.append(info["pos"].tolist())
        acts.append(a.tolist())
        if term or trunc:
            break
    crossed = (path[0][0] - info["wall_x"]) * (path[-1][0] - info["wall_x"]) < 0
    out = {
        "seed": seed,
        "success": bool(info["success"]),
        "start_distance": start,
        "final_distance": float(info["distance"]),
        "steps": len(path) - 1,
        "crossed_wall": bool(crossed),
        "plan_ms_mean": float(np.mean(ms)),
        "replan_ms": ms,
    }
    if trace:
        out.update(
            wall_x=int(env.wall_x),
            door_y=int(env.door_y),
            goal=info["goal_state"][:2].tolist(),
            path=path,
            last_actions=acts[-8:],
        )
    return out


def run(
    ckpts: dict[int | None, Path],
    methods: list[str],
    seeds: list[int],
    max_steps: int,
    base: dict,
    objectives: dict,
    bound: float | None = None,
    env: str = "two_rooms",
) -> dict:
    """Every method of every model (training seed -> checkpoint; None = not recorded) on every
    episode seed; per method the pooled figures, each run tagged with its training seed."""
    settings = {
        m: {**base, **METHODS[m], **{k: base[k] for k in ("samples", "iterations") if k in base}} for m in methods
    }
    per = {m: [] for m in methods}
    for train_seed, ckpt in ckpts.items():
        model, meta = load_checkpoint(ckpt)
        model.eval()
        agents = {m: make_agent(model, meta, settings[m], objectives, bound) for m in methods}
        for s in seeds:  # interleaved, so load changes on the shared machine hit every method alike
            for m in methods:
                r = {"train_seed": train_seed, **episode(agents[m], s, max_steps, env=env)}
                per[m].append(r)
                print(
                    f"[bench] {m:13s} model {train_seed} seed {s}: success={r['success']} steps={r['steps']} "
                    f"final={r['final_distance']:.1f}px ms/replan={r['plan_ms_mean']:.0f}",
                    flush=True,
                )
    out = {}
    for m, rs in per.items():
        ms = np.concatenate([r.pop("replan_ms") for r in rs])
        out[m] = {
            "settings": settings[m],
            "episodes": len(rs),
            "success_rate": float(np.mean([r["success"] for r in rs])),
            "success_rate_per_train_seed": {
                str(t): float(np.mean([r["success"] for r in rs if r["train_seed"] == t])) for t in ckpts
            },
            "crossed_wall_rate": float(np.mean([r["crossed_wall"] for r in rs])),
            "final_distance_mean": float(np.mean([r["final_distance"] for r in rs])),
            "ms_per_replan": float(np.mean([r["plan_ms_mean"] for r in rs])),
            "ms_per_replan_p50": float(np.percentile(ms, 50)),
            "ms_per_replan_p99": float(np.percentile(ms, 99)),
            "runs": rs,
        }
    return out


def plot(res: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].bar(names, [100 * res[n]["success_rate"] for n in names], color="tab:green")
    ax[0].set_ylabel("success (%)")
    ax[0].set_ylim(0, 100)
    ax[1].bar(names, [res[n]["ms_per_replan"] for n in names], color="tab:blue")
    ax[1].set_ylabel("ms per replan (2-core CPU, 1 thread)")
    for a in ax:
        a.tick_params(axis="x", rotation=20)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=100)


def planner_sets(ap: argparse.ArgumentParser, items: list[str]) -> dict:
    """`--set FIELD=VALUE ...` as a dict of PlannerConfig fields (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected FIELD=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None, help="model .safetensors (default: train one)")
    ap.add_argument(
        "--train-dir",
        type=Path,
        default=ROOT / "runs" / "bench_two_rooms",
        help="where training runs go, one dir per training seed: <dir>/s<seed> (resumes after a stop)",
    )
    ap.add_argument(
        "--train-seeds",
        default=None,
        help="comma-separated training seeds (run.seed, default 0), each trained and scored on every episode "
        "seed; with --checkpoint, the one seed it was trained with (recorded only)",
    )
    ap.add_argument(
        "--env",
        default="two_rooms",
        choices=GOAL_EVAL,
        help="env to train on (its random walk) and to score on: two_rooms_pldm = PLDM's DotWall rules",
    )
    ap.add_argument("--fit-steps", type=int, default=None, help="train.steps override when training")
    ap.add_argument(
        "--recipe-steps",
        type=int,
        default=None,
        help="train with the recipe's first N steps only (its last an export); 6 = up to the goal head's export",
    )
    ap.add_argument(
        "--no-door-crossings",
        action="store_true",
        help="train on walks that never change rooms (cross_prob=0, stay_in_room)",
    )
    ap.add_argument("--episodes", type=int, default=100, help="episodes per seed block")
    ap.add_argument("--seeds", type=int, default=3, help="seed blocks (episode seeds first_seed + 1000*b + i)")
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--hold", type=int, default=BASE["hold"])
    ap.add_argument("--horizon", type=int, default=BASE["horizon"])
    ap.add_argument(
        "--goal-every-step",
        action="store_true",
        help="goal cost summed over every imagined step instead of the terminal latent only",
    )
    ap.add_argument(
        "--goal-metric",
        default="l2",
        choices=("l2", "sq_l2", "l1", "cosine", "learned"),
        help="goal distance; learned = the model's goal-distance head (`moejepa-train goal`)",
    )
    ap.add_argument(
        "--smoothness",
        type=float,
        default=0.0,
        help="weight of the smoothness objective, sum ||a_t - a_(t-1)||^2 (0 = off; the demo's 0.01)",
    )
    ap.add_argument("--samples", type=int, default=None, help="override every method's samples per iteration")
    ap.add_argument("--iterations", type=int, default=None, help="override every method's iterations")
    ap.add_argument(
        "--correction-memory",
        type=int,
        default=0,
        help="planner.correction_memory: online model correction from the episode's last N steps (0 = off)",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="other PlannerConfig fields for every method, e.g. correction_bandwidth=0.5",
    )
    ap.add_argument(
        "--action-bound",
        type=float,
        default=None,
        help="plan actions in [-B, B] per axis (default: the checkpoint's action bounds)",
    )
    record.add_arguments(ap, "two_rooms_planning")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"--methods: unknown {bad}; known {list(METHODS)}")
    try:
        train_seeds = [int(t) for t in (a.train_seeds or "0").split(",") if t]
    except ValueError:
        ap.error(f"--train-seeds={a.train_seeds!r}: expected comma-separated integers")
    if not train_seeds or (a.checkpoint is not None and len(train_seeds) > 1):
        ap.error(f"--train-seeds={a.train_seeds!r}: give at least one seed, and one with --checkpoint")
    if a.recipe_steps is not None and not 1 <= a.recipe_steps <= len(DEMO.steps):
        ap.error(f"--recipe-steps={a.recipe_steps}: expected 1..{len(DEMO.steps)}")
    t0 = time.monotonic()
    if a.checkpoint is not None:  # labelled with --train-seeds when given (its provenance may not say)
        ckpts = {train_seeds[0] if a.train_seeds else None: a.checkpoint}
    else:
        ckpts = {
            t: train(a.train_dir / f"s{t}", a.no_door_crossings, a.fit_steps, a.env, t, a.recipe_steps)
            for t in train_seeds
        }
    train_s = time.monotonic() - t0 if a.checkpoint is None else None
    seeds = [a.first_seed + 1000 * b + i for b in range(a.seeds) for i in range(a.episodes)]
    base = {**BASE, "hold": a.hold, "horizon": a.horizon, "correction_memory": a.correction_memory}
    base.update(planner_sets(ap, a.set))
    for key in ("samples", "iterations"):
        if getattr(a, key) is not None:
            base[key] = getattr(a, key)
    objectives = {"goal": {**OBJECTIVES["goal"], "every_step": bool(a.goal_every_step), "metric": a.goal_metric}}
    if a.smoothness < 0:
        ap.error(f"--smoothness={a.smoothness} must be >= 0")
    if a.smoothness > 0:
        objectives["smoothness"] = {"enabled": True, "weight": a.smoothness}
    if a.action_bound is not None and a.action_bound <= 0:
        ap.error(f"--action-bound={a.action_bound} must be > 0")
    res = run(ckpts, methods, seeds, a.max_steps, base, objectives, a.action_bound, a.env)
    doc = {
        "env": a.env,
        "checkpoints": {str(t): str(c) for t, c in ckpts.items()},
        "seeds": {"training": list(ckpts), "episodes": seeds},
        "recipe_steps": None if a.checkpoint is not None else (a.recipe_steps or len(DEMO.steps)),
        "train_seconds": train_s,
        "no_door_crossings": a.no_door_crossings,
        "episodes": len(seeds) * len(ckpts),
        "episodes_per_block": a.episodes,
        "seed_blocks": a.seeds,
        "first_seed": a.first_seed,
        "max_steps": a.max_steps,
        "objectives": objectives,
        "action_bound": a.action_bound,
        "torch_threads": 1,
        "wall_seconds": time.monotonic() - t0,
        "note": "shared 2-core CPU: ms are noisy; methods run interleaved per episode",
        "methods": res,
    }
    if len(res) == 1:  # one method: its headline figures at the top as well
        only = next(iter(res.values()))
        doc.update({k: only[k] for k in ("success_rate", "ms_per_replan_p50", "ms_per_replan_p99")})
    record.write_result(a, doc)
    summary = ", ".join(f"{m} {100 * r['success_rate']:.0f}% ({r['ms_per_replan']:.0f} ms)" for m, r in res.items())
    plot(res, record.figure_path(a), f"Two-Rooms goal reaching, {len(seeds)} episodes (seeds {seeds[0]}..): {summary}")
    print("[bench]", summary, flush=True)


if __name__ == "__main__":
    main()
