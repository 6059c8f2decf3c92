"""torch vs onnxruntime side by side: ms per plan, per encode and image → action of the control step.

The default `ModelConfig` world model (untrained: the cost of a plan does not depend on training) is
saved, exported with `training.export.export_onnx`, and driven by two `LatentController`s, one on the
torch model and one on `OnnxWorldModel`, with the default planner and the reward + terminal value
objective of bench_planner. On a CUDA device (`--device cuda`: onnxruntime's CUDA provider when it
has one) a third controller plans with CUDA-graph rollouts (`cuda_graphs`). The backends alternate
plan by plan, so load on a shared machine hits all alike; each plans from the same frames with the
same seed, and the largest difference of their first actions from torch's is reported beside the
timings. `act_ms` is image → action: `LatentController.act` from a host frame stack to the clamped
first action. Writes through `bench.record` (name `export`).

    .venv/bin/python -m bench.micro.bench_export [--plans 60] [--threads 1] [--device cpu|cuda] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import onnxruntime
import torch

from bench import record
from moejepa_ros.control import LatentController
from moejepa_ros.control.device import resolve_device
from moejepa_ros.control.onnx_backend import OnnxWorldModel
from moejepa_ros.model import ModelConfig, WorldModel, save_checkpoint
from moejepa_ros.planning import PlannerConfig
from training.export import export_onnx

OBJECTIVES = {"reward": {"enabled": True, "weight": 1.0, "terminal_value": True}}
LOW, HIGH = [-1.0, -1.0], [1.0, 1.0]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plans", type=int, default=60, help="timed control steps per backend")
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:<i> | auto")
    record.add_arguments(ap, "export")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = WorldModel(ModelConfig()).eval()
    planner = PlannerConfig()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.safetensors")
        save_checkpoint(path, model, {"action_low": LOW, "action_high": HIGH})
        t0 = time.perf_counter()
        export_onnx(model, path)
        export_s = time.perf_counter() - t0
        model.to(device)
        onnx = OnnxWorldModel(model, path, device, args.threads)
    ctrls = {
        "torch": LatentController(model, device, planner, OBJECTIVES, LOW, HIGH),
        "onnxruntime": LatentController(onnx, device, planner, OBJECTIVES, LOW, HIGH),
    }
    if device.startswith("cuda"):
        ctrls["torch_cuda_graphs"] = LatentController(model, device, planner, OBJECTIVES, LOW, HIGH, cuda_graphs=True)
    c = model.cfg
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (c.frame_stack, c.image_size, c.image_size, 3), dtype=np.uint8) for _ in range(8)]
    times = {k: {"plan_ms": [], "encode_ms": [], "act_ms": []} for k in ctrls}
    diff = {k: 0.0 for k in ctrls if k != "torch"}
    load0 = os.getloadavg()
    for i in range(args.plans + 5):  # 5 warm-up steps
        got = {}
        for k, ctrl in ctrls.items():
            t0 = time.perf_counter()
            got[k] = ctrl.act(frames[i % len(frames)])
            act_ms = (time.perf_counter() - t0) * 1e3
            if i >= 5:
                times[k]["plan_ms"].append(got[k].plan_ms)
                times[k]["encode_ms"].append(got[k].encode_ms)
                times[k]["act_ms"].append(act_ms)
        for k in diff:
            diff[k] = max(diff[k], float(np.abs(got["torch"].action - got[k].action).max()))
    figures = {
        "model": "default ModelConfig (untrained)",
        "planner": {"method": planner.method, "samples": planner.samples, "horizon": planner.horizon},
        "threads": args.threads,
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "onnxruntime_version": onnxruntime.__version__,
        "onnxruntime_providers": onnx.providers,
        "plans": args.plans,
        "export_s": round(export_s, 2),
        "max_first_action_diff": diff["onnxruntime"],
        **({"max_first_action_diff_cuda_graphs": diff["torch_cuda_graphs"]} if "torch_cuda_graphs" in diff else {}),
        "load_avg_1m": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
    }
    for k, t in times.items():
        figures[k] = {
            f"{name}_{q}": round(_pct(v, p), 2) for name, v in t.items() for q, p in (("p50", 0.5), ("p99", 0.99))
        }
        print(json.dumps({"backend": k, **figures[k]}), flush=True)
    figures["plan_speedup_p50"] = round(figures["torch"]["plan_ms_p50"] / figures["onnxruntime"]["plan_ms_p50"], 2)
    print(json.dumps({k: v for k, v in figures.items() if k not in ctrls}), flush=True)
    record.write_result(args, figures)


if __name__ == "__main__":
    main()
