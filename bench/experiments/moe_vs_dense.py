"""MoE vs dense predictor at equal *active* parameters on Two-Rooms, plus the config-switch ablations.

Every variant trains with the training CLI on the same data (Two-Rooms, walls and doors drawn
per episode, biased random walk: free motion, wall contact and door passages), the same number
of Stage-2 steps and the same seed:

- `moe`: the config's MoE predictor, Stage 2 from a random encoder (= `baseline.kind=no_pretrain`);
- `dense`: `baseline.kind=dense` (one expert, hidden width from `dense_equivalent`, equal active
  predictor parameters, `active_predictor_params`);
- `moe_pretrain`: `pretrain` (Stage 1, `--pretrain-steps`) then Stage 2 with `fit.init_encoder=auto`;
- `pixel_recon`: `baseline.kind=pixel_recon` (pixel decoder + reconstruction loss, training/baselines.py).

Measured: open-loop latent error at 1/5/10/16 steps divided by the copy-last-latent baseline
(`training.evaluate.open_loop`, validation episodes); training wall time and throughput; planning
wall time (ms per plan, the config's CEM, variants interleaved call by call so machine noise hits
them alike); expert load fractions, their CV, and specialisation = mutual information (bits)
between the top-1 expert and a mode label: room side, near wall, and `dynamics` (free / contact
with a wall or the border / in the door). Timings on a shared machine: read the ratios only.

    .venv/bin/python -m bench.experiments.moe_vs_dense                    # reduced size (defaults)
    .venv/bin/python -m bench.experiments.moe_vs_dense --steps 3000 --episodes 1000 --seeds 3   # full size

Writes moe_vs_dense.json and .png through `bench.record`; runs live under --root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench import record
from bench.experiments.probing import cli

HORIZONS = (1, 5, 10, 16)
VARIANTS = {
    "moe": [],
    "dense": ["baseline.kind=dense"],
    "moe_pretrain": ["fit.init_encoder=auto"],
    "pixel_recon": ["baseline.kind=pixel_recon"],
}
RUN_NAME = {"moe_pretrain": "pretrain"}  # run folder <root>/<name>_s<seed>


def run_dir(root: str, variant: str, seed: int) -> Path:
    return Path(root) / f"{RUN_NAME.get(variant, variant)}_s{seed}"


def train(a, variant: str, seed: int, data_bags: str, log: Path) -> dict:
    """Fit one variant with the CLI unless its model exists; returns {'seconds', 'pretrain_seconds'}."""
    run = run_dir(a.root, variant, seed)
    side = run / "bench_fit.json"
    if (run / "fit" / "model.safetensors").is_file():
        return json.loads(side.read_text()) if side.is_file() else {}
    common = [
        f"run.out_dir={run}",
        f"data.bags=[{data_bags}]",
        "run.threads=1",
        "run.progress=false",
        f"run.seed={seed}",
        *a.override,
    ]
    out = {}
    if variant == "moe_pretrain":
        out["pretrain_seconds"] = cli(
            ["pretrain", "-c", "two_rooms", *common, f"train.steps={a.pretrain_steps}"], log
        ).get("seconds")
    out["seconds"] = cli(["fit", "-c", "two_rooms", *common, f"train.steps={a.steps}", *VARIANTS[variant]], log).get(
        "seconds"
    )
    side.write_text(json.dumps(out))
    return out


def throughput(run: Path) -> float:
    """Median logged training samples/s of the Stage-2 fit (startup excluded)."""
    rows = [json.loads(line) for line in open(run / "fit" / "metrics.jsonl") if line.strip()]
    v = [r["perf/samples_per_s"] for r in rows if "perf/samples_per_s" in r]
    return float(np.median(v)) if v else float("nan")


def dynamics_mode(states: np.ndarray) -> np.ndarray:
    """0 free motion, 1 contact (within 0.5 px of a wall face or the border), 2 inside the door."""
    from moejepa_ros.sim.two_rooms import ARENA_HI, ARENA_LO, DOOR_HALF, WALL_HALF

    x, y, wx, dy = (states[:, i] for i in range(4))
    in_door_rows = np.abs(y - dy) <= DOOR_HALF
    wall_gap = np.where(in_door_rows, np.inf, np.abs(x - wx) - WALL_HALF)
    border_gap = np.minimum.reduce([x - ARENA_LO, ARENA_HI - x, y - ARENA_LO, ARENA_HI - y])
    contact = np.minimum(wall_gap, border_gap) < 0.5
    door = in_door_rows & (np.abs(x - wx) < WALL_HALF + 2.0)
    return np.where(contact, 1, np.where(door, 2, 0))


def routing(model, data, n: int, seed: int) -> dict:
    """`training.evaluate.routing` plus MI with the dynamics mode (same samples, same seed)."""
    import torch

    from training.evaluate import mutual_information
    from training.evaluate import routing as base_routing
    from training.probing import cache_stacks, embed

    out = base_routing(model, data, n, seed, True)
    rng = np.random.default_rng(seed + 1)  # the draw base_routing makes
    st, states, acts = cache_stacks(data.cache, data.train_episodes, model.cfg.frame_stack, n, rng)
    with torch.no_grad():
        _, idx, _ = model.predictor.moe.route(embed(model, st), model.predictor.embed(torch.from_numpy(acts)))
    top1, m = idx[:, 0].numpy(), dynamics_mode(states)
    out["specialisation_bits"]["dynamics"] = mutual_information(top1, m)
    out["mode_counts"] = {"dynamics": np.bincount(m, minlength=3).tolist()}
    tab = np.zeros((3, model.cfg.experts))
    np.add.at(tab, (m, top1), 1)
    out["mode_expert_load"]["dynamics"] = (tab / tab.sum(1, keepdims=True).clip(1)).tolist()
    out["min_load"] = float(min(out["load"]))
    return out


def plan_times(cfg, models: dict, calls: int, seed: int) -> dict:
    """ms per plan with the config's planner, variants interleaved call by call; median + all."""
    from moejepa_ros.control import PlannerPolicy
    from moejepa_ros.sim import make_env

    env = make_env("two_rooms", mode="goal")
    pols = {
        n: PlannerPolicy(m, cfg.plan.planner, cfg.plan.objectives, meta["action_low"], meta["action_high"])
        for n, (m, meta) in models.items()
    }
    ms = {n: [] for n in models}
    for c in range(calls + 1):
        obs, info = env.reset(seed=seed + c)
        for n, pol in pols.items():
            t = time.perf_counter()
            pol(obs, info)
            if c:  # the first round warms up
                ms[n].append((time.perf_counter() - t) * 1e3)
    env.close()
    return {n: {"median_ms": float(np.median(v)), "ms": [round(x, 2) for x in v]} for n, v in ms.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="Stage-2 optimiser steps per variant")
    ap.add_argument("--pretrain-steps", type=int, default=100, help="Stage-1 steps of moe_pretrain")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--episodes", type=int, default=160, help="collected episodes (100 steps each)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--windows", type=int, default=256, help="open-loop windows / routing samples")
    ap.add_argument("--plan-calls", type=int, default=12)
    ap.add_argument("--root", default="runs/bench_moe")
    ap.add_argument("--override", nargs="*", default=[], help="extra training-CLI key=value for every variant")
    record.add_arguments(ap, "moe_vs_dense")
    ap.add_argument("--replot", action="store_true", help="only re-summarise and redraw from this run's JSON")
    a = ap.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v]
    if a.replot:  # recompute the summary from the stored per-seed numbers and redraw; the run's stamp stays
        doc = json.loads(record.json_path(a).read_text())
        report = doc["figures"]
        variants = list(report["seeds"][0]["variants"])
        report["summary"] = summarise(report["seeds"], variants)
        record.write_json(record.json_path(a), doc)
        plot(report, variants, record.figure_path(a))
        return 0
    bad = [v for v in variants if v not in VARIANTS]
    if bad or "moe" not in variants:
        raise SystemExit(f"--variants: unknown {bad} or 'moe' missing; choose from {list(VARIANTS)}")
    import torch

    torch.set_num_threads(1)
    from moejepa_ros.model.checkpoint import load_checkpoint
    from moejepa_ros.model.config import active_predictor_params
    from training.config import load_config
    from training.datasets import open_data
    from training.evaluate import open_loop

    os.makedirs(a.root, exist_ok=True)
    log = Path(a.root) / "bench.log"
    bags = Path(a.root) / "collect" / "bags"
    if not (bags.is_dir() and any(bags.iterdir())):
        cli(
            [
                "collect",
                "-c",
                "two_rooms",
                f"run.out_dir={a.root}",
                f"collect.episodes={a.episodes}",
                "collect.workers=1",
                "run.threads=1",
                "run.seed=0",
                "collect.overwrite=true",
            ],
            log,
        )
    t0 = time.perf_counter()
    seeds = []
    for seed in range(a.seeds):
        fits = {v: train(a, v, seed, str(bags), log) for v in variants}
        models = {v: load_checkpoint(run_dir(a.root, v, seed) / "fit" / "model.safetensors") for v in variants}
        cfg = load_config(
            ["two_rooms"],
            [f"run.out_dir={run_dir(a.root, 'moe', seed)}", f"data.bags=[{bags}]", f"run.seed={seed}", *a.override],
        )
        mc = models["moe"][0].cfg
        data = open_data(cfg, mc.image_size, mc.frame_stack + max(HORIZONS))
        res = {}
        for v, (m, _) in models.items():
            ol = open_loop(m, data, max(HORIZONS), a.windows, seed)
            r = {
                "train": {**fits[v], "samples_per_s": throughput(run_dir(a.root, v, seed))},
                "params": {
                    "active_predictor": active_predictor_params(m.cfg),
                    "predictor_total": sum(p.numel() for p in m.predictor.parameters()),
                    "encoder": sum(p.numel() for p in m.encoder.parameters()),
                    "experts": m.cfg.experts,
                    "top_k": m.cfg.active_k,
                    "expert_hidden": m.cfg.expert_hidden,
                },
                "open_loop": {
                    "horizon": list(HORIZONS),
                    "ratio": [ol["ratio"][h - 1] for h in HORIZONS],
                    "model": [ol["model"][h - 1] for h in HORIZONS],
                    "copy_last": [ol["copy_last"][h - 1] for h in HORIZONS],
                },
            }
            if not m.cfg.dense:
                r["routing"] = routing(m, data, a.windows, seed)
            res[v] = r
        pt = plan_times(cfg, models, a.plan_calls, 20_000 + seed)
        for v in variants:
            res[v]["plan"] = pt[v]
        seeds.append({"seed": seed, "variants": res})
        print(json.dumps({"seed": seed, **{v: res[v]["open_loop"]["ratio"] for v in variants}}), flush=True)
    report = {
        "what": "MoE vs dense at equal active predictor parameters, Two-Rooms with random walls",
        "config": {
            "steps": a.steps,
            "pretrain_steps": a.pretrain_steps,
            "seeds": a.seeds,
            "episodes": a.episodes,
            "windows": a.windows,
            "plan_calls": a.plan_calls,
            "override": a.override,
            "threads": 1,
            "horizons": list(HORIZONS),
        },
        "seeds": seeds,
        "summary": summarise(seeds, variants),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out, png = record.write_result(a, report), record.figure_path(a)
    plot(report, variants, png)
    print(json.dumps({"summary": report["summary"], "out": str(out), "png": str(png)}))
    return 0


def summarise(seeds: list, variants: list) -> dict:
    """Means over seeds; MoE/dense ratios and the goal checks."""

    def mean(f):
        return float(np.mean([f(s["variants"]) for s in seeds]))

    s: dict = {}
    for v in variants:
        s[v] = {
            "open_loop_ratio": [
                round(mean(lambda r, i=i: r[v]["open_loop"]["ratio"][i]), 4) for i in range(len(HORIZONS))
            ],
            # the ratio's denominator: a latent that barely moves between frames makes any ratio huge
            "copy_last": [
                round(mean(lambda r, i=i: r[v]["open_loop"]["copy_last"][i]), 5) for i in range(len(HORIZONS))
            ],
            "plan_ms": round(mean(lambda r: r[v]["plan"]["median_ms"]), 2),
            "train_samples_per_s": round(mean(lambda r: r[v]["train"]["samples_per_s"]), 2),
        }
        if all(r["variants"][v]["train"].get("seconds") for r in seeds):
            s[v]["train_seconds"] = round(mean(lambda r: r[v]["train"]["seconds"]), 1)
        if "routing" in seeds[0]["variants"][v]:
            s[v]["load"] = [
                round(mean(lambda r, e=e: r[v]["routing"]["load"][e]), 4)
                for e in range(len(seeds[0]["variants"][v]["routing"]["load"]))
            ]
            s[v]["load_cv"] = round(mean(lambda r: r[v]["routing"]["load_cv"]), 4)
            s[v]["specialisation_bits"] = {
                k: round(mean(lambda r, k=k: r[v]["routing"]["specialisation_bits"][k]), 4)
                for k in seeds[0]["variants"][v]["routing"]["specialisation_bits"]
            }
    if "dense" in variants:
        moe, dense = s["moe"], s["dense"]
        tr = dense["train_samples_per_s"] / moe["train_samples_per_s"]  # time ratio = inverse throughput
        s["moe_over_dense"] = {
            "open_loop_ratio": [round(m / d, 4) for m, d in zip(moe["open_loop_ratio"], dense["open_loop_ratio"])],
            "train_time_ratio_from_throughput": round(tr, 3),
            "train_wall_ratio": round(moe["train_seconds"] / dense["train_seconds"], 3)
            if "train_seconds" in moe and "train_seconds" in dense
            else None,
            "plan_time_ratio": round(moe["plan_ms"] / dense["plan_ms"], 3),
        }
        r = s["moe_over_dense"]
        s["goal"] = {
            "moe_lower_error_all_horizons": all(x < 1 for x in r["open_loop_ratio"]),
            "train_time_within_1.3x": tr <= 1.3,
            "plan_time_within_1.3x": r["plan_time_ratio"] <= 1.3,
            "no_expert_below_10pct": min(moe["load"]) >= 0.10,
            "specialisation_bits_max": max(moe["specialisation_bits"].values()),
        }
    return s


def plot(report: dict, variants: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["summary"]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for v in variants:
        ax[0].plot(HORIZONS, s[v]["open_loop_ratio"], "o-", label=v)
    ax[0].axhline(1.0, color="k", ls=":", lw=1)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("open-loop steps"), ax[0].set_ylabel("latent error / copy-last")
    ax[0].set_title("open-loop error (lower is better)", fontsize=9), ax[0].legend(fontsize=7)
    ref = s["dense"] if "dense" in s else s["moe"]
    x = np.arange(len(variants))
    ax[1].bar(
        x - 0.2,
        [ref["train_samples_per_s"] / s[v]["train_samples_per_s"] for v in variants],
        0.4,
        label="training time",
    )
    ax[1].bar(x + 0.2, [s[v]["plan_ms"] / ref["plan_ms"] for v in variants], 0.4, label="ms per plan")
    ax[1].axhline(1.3, color="r", ls=":", lw=1)
    ax[1].set_xticks(x, variants, fontsize=7), ax[1].set_ylabel("time / dense")
    ax[1].set_title("wall-time ratios (shared CPU, side by side)", fontsize=9), ax[1].legend(fontsize=7)
    moe = [v for v in variants if "load" in s[v]]
    E = len(s["moe"]["load"])
    for i, v in enumerate(moe):
        ax[2].bar(
            np.arange(E) + (i - (len(moe) - 1) / 2) * 0.8 / len(moe),
            s[v]["load"],
            0.8 / len(moe),
            label=f"{v} MI(dyn)={s[v]['specialisation_bits'].get('dynamics', 0):.3f}b",
        )
    ax[2].axhline(0.10, color="r", ls=":", lw=1)
    ax[2].set_xlabel("expert"), ax[2].set_ylabel("top-k load share")
    ax[2].set_title("expert load", fontsize=9), ax[2].legend(fontsize=7)
    c = report["config"]
    fig.suptitle(
        f"MoE vs dense (equal active params), Two-Rooms: {c['steps']} steps, {c['episodes']} episodes, "
        f"{c['seeds']} seed(s)",
        fontsize=10,
    )
    record.save_figure(fig, path, dpi=80)


if __name__ == "__main__":
    sys.exit(main())
