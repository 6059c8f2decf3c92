"""Where the MoE's planning time goes beside the dense predictor at equal active parameters.

The two predictors refit on one frozen encoder by `bench.experiments.moe_vs_dense_frozen` plan with the
demo's CEM (64 samples x 8 steps x 2 iterations, learned goal at every step), one thread,
interleaved call by call: the MoE as shipped (`grouped_mm` per layer), the MoE with each
`grouped_mm` replaced by a per-expert `mm` loop (to size grouped_mm's own overhead), and the
dense model. Then torch.profiler's self CPU time per op over `--profile-plans` plans of each.

    .venv/bin/python -m bench.micro.moe_plan_profile [--record]

Writes `bench.record`'s moe_plan_profile.json.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench import record
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.planning import build_objectives, make_planner
from testing.demo_planner import goal_only, plain_demo_planner

PLANNER = plain_demo_planner()
OBJECTIVES = goal_only()
GROUPED_MM = F.grouped_mm


def per_expert_mm(x: torch.Tensor, w: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    """grouped_mm's maths as one plain `mm` per expert on its slice of the sorted rows."""
    bounds = [0, *offs.tolist()]
    out = x.new_empty(x.shape[0], w.shape[-1])
    for i in range(w.shape[0]):
        if bounds[i + 1] > bounds[i]:
            torch.mm(x[bounds[i] : bounds[i + 1]], w[i], out=out[bounds[i] : bounds[i + 1]])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moe", default="runs/bench_moe_frozen/moe_s0/refine/model.safetensors")
    ap.add_argument("--dense", default="runs/bench_moe_frozen/dense_s0/refine/model.safetensors")
    ap.add_argument("--plans", type=int, default=200)
    ap.add_argument("--profile-plans", type=int, default=30)
    record.add_arguments(ap, "moe_plan_profile")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    planners = {}
    for name, path in (("moe", a.moe), ("dense", a.dense)):
        model, meta = load_checkpoint(path)
        planners[name] = make_planner(
            PLANNER, model, build_objectives(OBJECTIVES), meta["action_low"], meta["action_high"]
        )
    torch.manual_seed(0)
    dim = planners["moe"].latent_dim
    zs = F.layer_norm(torch.randn(a.plans + 1, 2, dim), (dim,))  # start and goal latents
    cases = {
        "moe_grouped_mm": ("moe", GROUPED_MM),
        "moe_per_expert_mm": ("moe", per_expert_mm),
        "dense": ("dense", GROUPED_MM),
    }
    ms = {c: [] for c in cases}
    try:
        for i in range(a.plans + 1):
            for case, (name, mm) in cases.items():
                F.grouped_mm = mm
                t = time.perf_counter()
                planners[name].plan(zs[i, 0], zs[i, 1])
                if i:  # the first round warms up
                    ms[case].append((time.perf_counter() - t) * 1e3)
    finally:
        F.grouped_mm = GROUPED_MM
    p50 = {c: round(float(np.median(v)), 2) for c, v in ms.items()}
    from torch.profiler import ProfilerActivity, profile

    ops = {}
    for name in ("moe", "dense"):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(a.profile_plans):
                planners[name].plan(zs[i, 0], zs[i, 1])
        rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
        ops[name] = {
            e.key: {
                "self_ms_per_plan": round(e.self_cpu_time_total / 1e3 / a.profile_plans, 3),
                "calls_per_plan": round(e.count / a.profile_plans, 1),
            }
            for e in rows
        }
    report = {
        "what": __doc__.split("\n\n")[0],
        "planner": PLANNER,
        "objectives": OBJECTIVES,
        "threads": 1,
        "plans": a.plans,
        "ms_per_plan_p50": p50,
        "ratio_to_dense": {c: round(p50[c] / p50["dense"], 3) for c in cases},
        "profile_self_ms_per_plan": ops,
        "checkpoints": {"moe": a.moe, "dense": a.dense},
    }
    record.write_result(a, report)
    print({"ms_per_plan_p50": p50, "ratio_to_dense": report["ratio_to_dense"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
