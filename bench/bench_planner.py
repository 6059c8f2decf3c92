"""Planner latency: ms per plan (p50/p99), latent rollout-steps/s and achieved / peak FLOP/s.

Runs every planner config on the default `ModelConfig` world model (untrained weights: the
cost of a plan does not depend on training), objective = predicted discounted reward + terminal
value (TD-MPC2 style). FLOPs are counted analytically (predictor: action embedding, router,
top-k active experts; reward / value heads); peak = a big fp32 matmul measured in the same run.
The machine may be shared: configs are interleaved in rounds so load hits all alike, and the
process CPU time per plan is reported beside wall time. Prints one JSON line per config and
writes bench/results/planner.json.

    .venv/bin/python bench/bench_planner.py [--threads 2] [--plans 40] [--rounds 4] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import torch

from moejepa_ros.model import ModelConfig, WorldModel
from moejepa_ros.planning import PlannerConfig, make_planner

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "planner.json"
OBJECTIVES = {"reward": {"enabled": True, "weight": 1.0, "terminal_value": True}}

# (method, samples, horizon, iterations); the first is the default control-rate config.
GRID = [
    ("cem", 256, 5, 4),
    ("mppi", 256, 5, 4),
    ("gradient", 256, 5, 4),
    ("cem_gradient", 256, 5, 4),
    ("cem", 128, 5, 4),
    ("cem", 256, 8, 4),
    ("cem", 512, 5, 4),
    ("cem", 512, 12, 6),
]


def mlp_flops(d_in: int, hidden: int, d_out: int) -> int:
    """Multiply-adds x2 of the heads' 3-layer MLP (+ ~5 flops/element for LayerNorm and SiLU)."""
    return 2 * (d_in * hidden + hidden * hidden + hidden * d_out) + 2 * 10 * hidden


def step_flops(c: ModelConfig) -> int:
    """Predictor FLOPs per sample-step: action embedding, router, active experts, residual + norm."""
    din = c.latent_dim + c.action_embed_dim
    f = 2 * c.action_dim * c.action_embed_dim
    if not c.dense and c.num_experts > 1:
        f += 2 * din * c.num_experts
    f += c.active_k * (2 * (din * c.expert_hidden + c.expert_hidden * c.latent_dim) + 4 * c.expert_hidden)
    return f + 6 * c.latent_dim


def plan_flops(c: ModelConfig, pc: PlannerConfig, rollout_steps: int) -> float:
    """FLOPs of one plan from its imagined sample-steps (rollouts, objectives; x3 for backward)."""
    per_step = step_flops(c) + mlp_flops(c.latent_dim + c.action_dim, c.head_hidden, 1)
    sequences = rollout_steps / pc.horizon
    total = rollout_steps * per_step + sequences * mlp_flops(c.latent_dim, c.head_hidden, 1)
    if pc.method in ("gradient", "cem_gradient"):
        g_steps = pc.grad_restarts * pc.horizon * pc.grad_steps  # these also run backward (~2x forward)
        total += 2 * g_steps * per_step
    return float(total)


def peak_matmul_flops(device: torch.device, n: int, repeats: int = 5) -> float:
    """Best achieved fp32 FLOP/s of an n x n @ n x n matmul on `device` (this run, this load)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = 0.0
    for _ in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plans", type=int, default=40, help="timed plans per config (over all rounds)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="default config only, few plans")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    mcfg = ModelConfig()
    model = WorldModel(mcfg).eval().to(device)
    grid = GRID[:1] if args.quick else GRID
    plans_per_round = max(1, (10 if args.quick else args.plans) // args.rounds)
    load0 = os.getloadavg()
    peak = peak_matmul_flops(device, 4096 if device.type == "cuda" else 1024)

    planners, times, cpu, steps = {}, {}, {}, {}
    for spec in grid:
        method, n, h, it = spec
        pc = PlannerConfig(method=method, samples=n, horizon=h, iterations=it)
        p = make_planner(pc, model, OBJECTIVES, -1.0, 1.0, device=device)
        for _ in range(3):  # warm-up (allocations, first-call dispatch)
            p.plan(torch.randn(mcfg.latent_dim, device=device))
        planners[spec], times[spec], cpu[spec], steps[spec] = p, [], [], []

    gen = torch.Generator().manual_seed(1)
    for _ in range(args.rounds):
        for spec, p in planners.items():
            for _ in range(plans_per_round):
                # A slowly drifting latent, like consecutive camera frames (warm start applies).
                z0 = torch.randn(mcfg.latent_dim, generator=gen).to(device)
                c0 = time.process_time()
                plan = p.plan(z0)
                _sync(device)
                cpu[spec].append((time.process_time() - c0) * 1e3)
                times[spec].append(plan.elapsed_ms)
                steps[spec].append(plan.rollout_steps)

    rows = []
    for spec, p in planners.items():
        method, n, h, it = spec
        ms = times[spec]
        mean_s = sum(ms) / len(ms) / 1e3
        rsteps = sum(steps[spec]) / len(steps[spec])
        flops = plan_flops(mcfg, p.cfg, int(rsteps))
        row = {
            "bench": "planner", "method": method, "samples": n, "horizon": h, "iterations": it,
            "device": device.type, "threads": args.threads, "plans": len(ms),
            "ms_p50": round(_pct(ms, 0.5), 2), "ms_p99": round(_pct(ms, 0.99), 2),
            "ms_min": round(min(ms), 2), "cpu_ms_p50": round(_pct(cpu[spec], 0.5), 2),
            "rollout_steps_per_plan": int(rsteps),
            "rollout_steps_per_s": round(rsteps / mean_s),
            "gflop_per_plan": round(flops / 1e9, 4),
            "achieved_gflops": round(flops / mean_s / 1e9, 2),
            "peak_matmul_gflops": round(peak / 1e9, 1),
            "fraction_of_peak": round(flops / mean_s / peak, 4),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}".strip(),
        "torch": torch.__version__, "threads": args.threads, "device": device.type,
        "model": {k: getattr(mcfg, k) for k in ("latent_dim", "action_dim", "num_experts", "top_k",
                                                  "expert_hidden", "action_embed_dim", "head_hidden",
                                                  "moe_impl")},
        "objectives": OBJECTIVES, "default_planner": PlannerConfig().to_dict(),
        "loadavg_start": load0, "loadavg_end": os.getloadavg(),
        "note": "p99 over this many plans is close to the max; the machine may be shared (see loadavg)",
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
    print(json.dumps({"meta": meta}))


if __name__ == "__main__":
    main()
