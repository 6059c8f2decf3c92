"""Which no-grad rollout path of `Predictor.rollout` is faster, by size: the sorted fast path (packed,
sorted grouped_mm) vs the batched step path (`masked` experts), the two interleaved call by call on one thread.

`Predictor.fast_rollout_ok` switches between them at `SORTED_MIN_WORK` (samples x horizon x
top_k x expert hidden); this bench is where that threshold comes from. Sizes: planner-like
rollouts (8 steps) and the one-step calls of the online correction (`CorrectedModel`,
`OnlineCorrection.observe`), for the default config and for the committed Two-Rooms predictor.

    .venv/bin/python -m bench.micro.bench_rollout_path [--record]

Writes `bench.record`'s rollout_path.json (median ms of each path, their ratio, the work and the
path the switch picks).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench import record
from moejepa_ros.model import ModelConfig
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.model.predictor import SORTED_MIN_WORK, Predictor

SIZES = [(1, 1), (8, 1), (64, 1), (256, 1), (16, 8), (32, 8), (64, 8), (256, 8)]


class _OnePath:
    """`pred` with the switch fixed, so `Predictor.rollout` takes the sorted path (True) or the step path."""

    def __init__(self, pred: Predictor, sort: bool):
        self.inner, self.sort = pred, sort

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fast_rollout_ok(self, n: int, horizon: int = 1) -> bool:
        return self.sort


@torch.no_grad()
def compare(pred: Predictor, n: int, horizon: int, calls: int) -> dict:
    torch.manual_seed(0)
    z0 = torch.softmax(torch.randn(1 if horizon > 1 else n, pred.latent_dim), -1)
    acts = torch.rand(n, horizon, pred.action_dim) * 2 - 1
    paths = {
        k: (lambda f=Predictor.rollout.__get__(_OnePath(pred, k == "sorted")): f(z0, acts, need_aux=False))
        for k in ("sorted", "masked")
    }
    ms = {k: [] for k in paths}
    for c in range(calls + 5):
        for k, f in paths.items():
            t = time.perf_counter()
            f()
            if c >= 5:
                ms[k].append((time.perf_counter() - t) * 1e3)
    s, m = float(np.median(ms["sorted"])), float(np.median(ms["masked"]))
    work = n * horizon * pred.moe.k * pred.moe.H
    return {
        "samples": n,
        "horizon": horizon,
        "work": work,
        "sorted_ms": round(s, 4),
        "masked_ms": round(m, 4),
        "masked_over_sorted": round(m / s, 3),
        "switch_picks": "sorted" if pred.fast_rollout_ok(n, horizon) else "masked",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="checkpoints/two_rooms.safetensors")
    ap.add_argument("--calls", type=int, default=200)
    record.add_arguments(ap, "rollout_path")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    preds = {
        "default config": Predictor(ModelConfig()).eval(),
        "committed Two-Rooms": load_checkpoint(a.checkpoint)[0].predictor.eval(),
    }
    rep = {"threads": 1, "sorted_min_work": SORTED_MIN_WORK, "models": {}}
    for name, pred in preds.items():
        rows = []
        for n, h in SIZES:
            rows.append(compare(pred, n, h, a.calls))
            print(json.dumps({"model": name, **rows[-1]}), flush=True)
        rep["models"][name] = {
            "expert_hidden": pred.moe.H,
            "experts": pred.moe.E,
            "top_k": pred.moe.k,
            "latent_dim": pred.latent_dim,
            "rows": rows,
        }
    record.write_result(a, rep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
