"""Is the Two-Rooms encoder fit safe across seeds? Fit variants × seeds on the held-out-wall split, probe each.

`bench.experiments.probing` found one seed of the demo recipe's 800-step fit that kept the wall layout and
dropped the agent dot (probe error ~ the positions' variance). This bench fits each named variant
of the Stage-2 loss (`VARIANTS`: overrides of `fit.*`) with several seeds on the same per-wall
data as `bench.experiments.probing` (its `--root`'s `walls/` bags) and probes every encoder with a quick
protocol (5000 probe frames, 500 MLP epochs; the same sets, px²). A fit counts as *lost* when the
MLP probe's `normal` error is above `--lost-px2` (default 10 px², ~3 px RMS).

    .venv/bin/python -m bench.experiments.probing_fit_seeds --variants idm1,ms4w3 --seeds 0,1,2,3

Writes probing_fit_seeds.json through `bench.record`; fits live under --root (skipped when present).
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
from bench.experiments import probing as pb

VARIANTS = {
    "idm1": [],  # the demo recipe (config/train/two_rooms.yaml)
    "idm5": ["fit.idm_weight=5.0"],  # one-step IDM, 5x the weight
    "ms4": ["fit.idm_horizon=4"],  # multi-step IDM over 1..4 steps
    "ms4w3": ["fit.idm_horizon=4", "fit.idm_weight=3.0"],
}
SETS = ("normal", "wall", "wall_other", "expert")


def final_terms(run: Path, last: int = 5) -> dict:
    """Mean of the last `last` logged latent / IDM losses of a fit (and `idm_ratio` where the fit logged it)."""
    rows = [json.loads(x) for x in open(run / "fit" / "metrics.jsonl")]
    rows = [r for r in rows if "loss/latent" in r][-last:]
    keys = [k for k in ("latent", "idm", "idm_ratio") if all(f"loss/{k}" in r for r in rows)]
    return {k: round(float(np.mean([r[f"loss/{k}"] for r in rows])), 5) for k in keys}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="idm1,ms4w3", help="comma list of " + ", ".join(VARIANTS))
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--steps", type=int, default=800, help="fit steps (the demo recipe's 800)")
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--train-walls", default="20,23,26,29,32,35,38,41")
    ap.add_argument(
        "--data-root", default="runs/s6_probe", help="bench.experiments.probing --root whose walls/ bags to use"
    )
    ap.add_argument("--root", default="runs/s7", help="fits go to <root>/<variant>_s<seed>")
    ap.add_argument("--cache", default="", help="decoded-frame cache dir shared by the fits (default <root>/cache)")
    ap.add_argument("--lost-px2", type=float, default=10.0)
    record.add_arguments(ap, "probing_fit_seeds")
    a = ap.parse_args(argv)
    a.train_walls = [int(w) for w in a.train_walls.split(",")]
    variants, seeds = a.variants.split(","), [int(s) for s in a.seeds.split(",")]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    import torch

    torch.set_num_threads(1)
    from moejepa_ros.model.checkpoint import load_checkpoint
    from training.config import load_config
    from training.datasets import open_data
    from training.probing import probe_two_rooms

    os.makedirs(a.root, exist_ok=True)
    log = Path(a.root) / "fit_seeds.log"
    bags = pb.collect_per_wall(a, Path(a.data_root) / "walls", ["two_rooms"], a.episodes, [], 0, log)
    cache = Path(a.cache or Path(a.root) / "cache")  # one decoded-frame cache for every fit
    base = [
        "data.bags=[" + ",".join(bags) + "]",
        f"data.cache_dir={cache}",
        "run.threads=1",
        "run.progress=false",
        f"train.steps={a.steps}",
    ]
    t0, rows, data = time.perf_counter(), [], None
    for v in variants:
        for s in seeds:
            run = Path(a.root) / f"{v}_s{s}"
            model_path = run / "fit" / "model.safetensors"
            if not model_path.is_file():
                pb.cli(["fit", "-c", "two_rooms", f"run.out_dir={run}", f"run.seed={s}", *base, *VARIANTS[v]], log)
            model, _ = load_checkpoint(str(model_path))
            if data is None:
                cfg = load_config(["two_rooms"], [*base, f"run.out_dir={a.root}"])
                data = open_data(cfg, model.cfg.image_size, model.cfg.frame_stack + 1)
            r = probe_two_rooms(model, data, 5000, 500, seed=0, n_test=200)
            row = {
                "variant": v,
                "seed": s,
                "overrides": VARIANTS[v],
                "final": final_terms(run),
                "mlp": {k: round(r["mlp"][k], 2) for k in SETS},
                "linear": {k: round(r["linear"][k], 2) for k in SETS},
            }
            row["lost"] = bool(row["mlp"]["normal"] > a.lost_px2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for v in variants:
        mine = [r for r in rows if r["variant"] == v]
        ok = [r["mlp"]["normal"] for r in mine if not r["lost"]]
        summary[v] = {
            "lost": f"{sum(r['lost'] for r in mine)}/{len(mine)}",
            "mlp_normal_by_seed": {r["seed"]: r["mlp"]["normal"] for r in mine},
            "mlp_normal_median": float(np.median([r["mlp"]["normal"] for r in mine])),
            "mlp_normal_kept_mean": round(float(np.mean(ok)), 2) if ok else None,
        }
    report = {
        "what": "Two-Rooms fit variants x seeds, held-out-wall split, quick probe (5000 frames, 500 epochs)",
        "config": {
            "steps": a.steps,
            "episodes": a.episodes,
            "train_walls": a.train_walls,
            "seeds": seeds,
            "lost_px2": a.lost_px2,
            "probe": {"frames": 5000, "mlp_epochs": 500, "n_test": 200},
        },
        "rows": rows,
        "summary": summary,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    record.write_result(a, report)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
