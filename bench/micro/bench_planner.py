"""Planner latency: ms per plan (p50/p99), latent rollout-steps/s and achieved / peak FLOP/s.

Runs every planner config on the default `ModelConfig` world model (untrained weights: the
cost of a plan does not depend on training), objective = predicted discounted reward + terminal
value (TD-MPC2 style). FLOPs are counted analytically (predictor: action embedding, router,
top-k active experts; reward / value heads); peak = a big fp32 matmul measured in the same run.
The machine may be shared: configs are interleaved in rounds so load hits all alike, and the
process CPU time per plan is reported beside wall time. On a CUDA device every config also runs
with its rollouts replayed as CUDA graphs (`GraphedRollout`, planner_node's `cuda_graphs`), side by
side with the eager one (`--cuda-graphs`). Prints one JSON line per config and writes them through
`bench.record` (name `planner`).

    .venv/bin/python -m bench.micro.bench_planner [--threads 2,1] [--plans 40] [--rounds 4] [--quick]
        [--device auto|cpu|cuda] [--cuda-graphs both|on|off] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from bench import record
from moejepa_ros.control.cuda_graphs import GraphedRollout
from moejepa_ros.control.device import resolve_device
from moejepa_ros.model import ModelConfig, WorldModel
from moejepa_ros.planning import PlannerConfig, make_planner

OBJECTIVES = {"reward": {"enabled": True, "weight": 1.0, "terminal_value": True}}

# Planner configs (overrides of PlannerConfig()); the first is the default control-rate config.
GRID = [
    {"method": "cem", "samples": 256, "horizon": 5, "iterations": 4},
    {"method": "cem", "samples": 256, "horizon": 5, "iterations": 4, "keep_elites": 0},
    {"method": "cem", "samples": 256, "horizon": 5, "iterations": 4, "population_decay": 0.7},
    {"method": "mppi", "samples": 256, "horizon": 5, "iterations": 4},
    {"method": "gradient", "horizon": 5, "grad_steps": 10, "grad_restarts": 2},
    {"method": "cem_gradient", "samples": 256, "horizon": 5, "iterations": 4, "grad_steps": 5},
    {"method": "cem", "samples": 128, "horizon": 5, "iterations": 4},
    {"method": "cem", "samples": 256, "horizon": 8, "iterations": 4},
    {"method": "cem", "samples": 512, "horizon": 5, "iterations": 4},
    {"method": "cem", "samples": 512, "horizon": 12, "iterations": 6, "elites": 64},
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
    ap.add_argument("--threads", default="2,1", help="comma list; each config runs at each count")
    ap.add_argument("--plans", type=int, default=40, help="timed plans per config (over all rounds)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="the default config only")
    ap.add_argument(
        "--cuda-graphs",
        choices=("both", "on", "off"),
        default="both",
        help="on a CUDA device: eager rollouts, CUDA-graph rollouts, or both side by side (ignored on cpu)",
    )
    record.add_arguments(ap, "planner")
    args = ap.parse_args()

    threads = [int(t) for t in str(args.threads).split(",")]
    torch.set_num_threads(threads[0])
    device = torch.device(resolve_device(args.device))
    torch.manual_seed(0)
    mcfg = ModelConfig()
    model = WorldModel(mcfg).eval().to(device)
    graph_modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.cuda_graphs]
    if device.type != "cuda":
        graph_modes = (False,)
    grid = GRID[:1] if args.quick else GRID
    plans_per_round = max(1, args.plans // args.rounds)
    load0 = os.getloadavg()
    peak = {}
    for t in threads:
        torch.set_num_threads(t)
        peak[t] = peak_matmul_flops(device, 4096 if device.type == "cuda" else 1024)

    runs = {}
    for i, over in enumerate(grid):
        for t in threads:
            for graphs in graph_modes:
                torch.set_num_threads(t)
                pc = PlannerConfig.from_dict(over)
                m = GraphedRollout(model) if graphs else model
                p = make_planner(pc, m, OBJECTIVES, -1.0, 1.0, device=device)
                for _ in range(3):  # warm-up (allocations, first-call dispatch, graph captures)
                    p.plan(torch.randn(mcfg.latent_dim, device=device))
                runs[(i, t, graphs)] = {"planner": p, "model": m, "ms": [], "cpu": [], "steps": []}

    gen = torch.Generator().manual_seed(1)
    for _ in range(args.rounds):  # interleaved, so a load burst hits every config alike
        for (i, t, _), r in runs.items():
            torch.set_num_threads(t)
            for _ in range(plans_per_round):
                z0 = torch.randn(mcfg.latent_dim, generator=gen).to(device)
                _sync(device)
                c0, w0 = time.process_time(), time.perf_counter()
                plan = r["planner"].plan(z0)
                _sync(device)
                r["cpu"].append((time.process_time() - c0) * 1e3)
                r["ms"].append((time.perf_counter() - w0) * 1e3)
                r["steps"].append(plan.rollout_steps)

    rows = []
    for (i, t, graphs), r in runs.items():
        pc = r["planner"].cfg
        ms = r["ms"]
        mean_s = sum(ms) / len(ms) / 1e3
        rsteps = sum(r["steps"]) / len(r["steps"])
        flops = plan_flops(mcfg, pc, int(rsteps))
        row = {
            "bench": "planner",
            "config": grid[i],
            "method": pc.method,
            "samples": pc.samples,
            "horizon": pc.horizon,
            "iterations": pc.iterations,
            "device": device.type,
            "cuda_graphs": graphs,
            "graphs_captured": len(r["model"].graphs) if graphs else 0,
            "graphs_disabled": r["model"].disabled if graphs else None,
            "threads": t,
            "plans": len(ms),
            "ms_p50": round(_pct(ms, 0.5), 2),
            "ms_p99": round(_pct(ms, 0.99), 2),
            "ms_min": round(min(ms), 2),
            "cpu_ms_p50": round(_pct(r["cpu"], 0.5), 2),
            "rollout_steps_per_plan": int(rsteps),
            "rollout_steps_per_s": round(rsteps / mean_s),
            "gflop_per_plan": round(flops / 1e9, 4),
            "achieved_gflops": round(flops / mean_s / 1e9, 2),
            "peak_matmul_gflops": round(peak[t] / 1e9, 1),
            "fraction_of_peak": round(flops / mean_s / peak[t], 4),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {
        "threads": threads,
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "model": {
            k: getattr(mcfg, k)
            for k in (
                "latent_dim",
                "action_dim",
                "num_experts",
                "top_k",
                "expert_hidden",
                "action_embed_dim",
                "head_hidden",
                "moe_impl",
            )
        },
        "objectives": OBJECTIVES,
        "default_planner": PlannerConfig().to_dict(),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "note": "p99 over this many plans is close to the max; the machine may be shared (see loadavg)",
    }
    record.write_result(args, {"meta": meta, "results": rows})
    print(json.dumps({"meta": meta}))


if __name__ == "__main__":
    main()
