"""Same agents, other planners: closed-loop DMC returns of trained agents under planner variants.

Training and evaluation both plan, so a planner change in a training run moves two things at once: the data
the model learns from and the actions it is scored by. This bench holds the models fixed (agents of
`bench.experiments.dmc_pixels`, one checkpoint per training seed) and varies only the evaluation planner, on
the training runs' own evaluation episodes (seeds EVAL_SEED + 1000 x training seed + i, training/mbrl.py),
with the task's settings of `dmc_pixels` (episode steps, discount) and no exploration noise.

    MUJOCO_GL=egl python -m bench.experiments.dmc_planner_eval --task cartpole_swingup \\
        --checkpoint <run>/cartpole_swingup/seed0/mbrl/agent/model.safetensors ... --seeds 0 1 2 \\
        --variant config --variant tdmpc plan.planner.samples=512 plan.planner.iterations=6

A variant is a name and its overrides of config/train/dmc.yaml (plan.*); `--set` applies to all of them
(e.g. the overrides a training run was started with). Per variant: each seed's returns and plan time, the
mean over seeds and its spread (std of the per-seed means).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from bench import record
from bench.experiments.dmc_pixels import task_settings


def variant_config(task: str, common: list[str], overrides: list[str], config: str):
    """The training config with the task's settings, the common overrides, then the variant's."""
    from training.config import load_config

    s = task_settings(task)
    base = [
        f"collect.env=dmc:{task}",
        f"mbrl.max_episode_steps={s['steps']}",
        f"model.losses.gamma={s['gamma']}",
        f"plan.planner.gamma={s['gamma']}",
    ]
    return load_config([config], base + list(common) + list(overrides))


def agent_policy(path: str, cfg, who: str):
    """A trained DMC agent's planner (`cfg`'s, no exploration noise) on the CPU, refusing an agent that learnt on
    other pixels than `cfg.collect.env_kwargs` render; returns (policy, the checkpoint's meta)."""
    import torch

    from moejepa_ros.control import PlannerPolicy
    from moejepa_ros.model.checkpoint import load_checkpoint
    from moejepa_ros.sim.dmc import check_same_pixels, trained_env_kwargs

    model, meta = load_checkpoint(path)
    check_same_pixels(trained_env_kwargs(meta), cfg.collect.env_kwargs, f"{who}: {path}")
    low, high = meta["action_low"], meta["action_high"]
    return PlannerPolicy(model.eval(), cfg.plan.planner, cfg.plan.objectives, low, high, torch.device("cpu")), meta


def main(argv: list[str] | None = None) -> dict:
    import torch

    from moejepa_ros.model.checkpoint import load_checkpoint
    from training.evaluate import closed_loop
    from training.mbrl import EVAL_SEED

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="cartpole_swingup")
    ap.add_argument("--checkpoint", required=True, nargs="+", help="one trained agent per training seed")
    ap.add_argument("--seeds", type=int, nargs="+", help="each checkpoint's training seed (default 0, 1, ...)")
    ap.add_argument(
        "--variant",
        nargs="+",
        action="append",
        required=True,
        metavar="NAME [key=value ...]",
        help="a named planner variant and its overrides (repeat for each variant)",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value", help="overrides for every variant")
    ap.add_argument("--episodes", type=int, default=10, help="evaluation episodes per agent and variant")
    ap.add_argument("--steps", type=int, default=0, help="env steps per episode (0: the task's whole episode)")
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    record.add_arguments(ap, "dmc_planner_eval")
    a = ap.parse_args(argv)
    seeds = a.seeds if a.seeds is not None else list(range(len(a.checkpoint)))
    if len(seeds) != len(a.checkpoint):
        ap.error(f"--seeds gives {len(seeds)} seeds for {len(a.checkpoint)} checkpoints")
    names = [v[0] for v in a.variant]
    if len(set(names)) != len(names):
        ap.error(f"variant names repeat: {names}")
    torch.set_num_threads(1)
    steps = a.steps or task_settings(a.task)["steps"]
    cfgs = {v[0]: variant_config(a.task, a.set, v[1:], a.config) for v in a.variant}  # bad overrides fail first
    agents = [load_checkpoint(p) for p in a.checkpoint]
    for path, (_, meta) in zip(a.checkpoint, agents):
        env = (meta.get("training") or {}).get("env")
        if env not in (None, f"dmc:{a.task}"):
            ap.error(f"{path} was trained on {env}, not dmc:{a.task}")
    variants = {}
    for v in a.variant:
        per_seed = {}
        for seed, (model, meta) in zip(seeds, agents):
            model.eval()
            ev = closed_loop(
                cfgs[v[0]],
                model,
                meta,
                a.episodes,
                steps,
                torch.device("cpu"),
                seed=EVAL_SEED + 1000 * seed,
                env_kwargs=cfgs[v[0]].mbrl.env_kwargs,
            )
            per_seed[str(seed)] = {
                "returns": [round(r, 2) for r in ev["returns"]],
                "return_mean": round(ev["return_mean"], 2),
                "plan_ms_mean": round(ev["plan_ms_mean"], 2),
            }
            print(f"{v[0]} seed {seed}: {ev['return_mean']:.1f}", flush=True)
        means = [r["return_mean"] for r in per_seed.values()]
        variants[v[0]] = {
            "overrides": v[1:],
            "per_seed": per_seed,
            "return_mean": round(float(np.mean(means)), 2),
            "return_std": round(float(np.std(means)), 2),
        }
    res = {
        "task": a.task,
        "episodes": a.episodes,
        "steps": steps,
        "checkpoints": a.checkpoint,
        "seeds": seeds,
        "common_overrides": a.set,
        "reward_scale": [(meta.get("training") or {}).get("reward_scale") for _, meta in agents],
        "variants": variants,
    }
    record.write_result(a, res)
    print(json.dumps({n: (v["return_mean"], v["return_std"]) for n, v in variants.items()}))
    return res


if __name__ == "__main__":
    main()
