"""Encoder throughput on one device: frames/s per precision, for the control step and for batches.

The default `ModelConfig` encoder (untrained: its cost does not depend on training) encodes uint8
frame stacks at each `encoder_precision` the device supports (fp32 and bf16 on CPU; fp32, fp16 and
bf16 where the card has it on CUDA). Batch 1 is the control step, timed from a host numpy stack to a
float32 latent, with the upload planner_node uses (`FrameUpload`: pinned staging buffer on CUDA)
and, on CUDA, beside a plain pageable `.to(device)`; larger batches show throughput (frame stacks
already on the device). Writes through `bench.record` (name `encoder`).

    .venv/bin/python -m bench.micro.bench_encoder [--device auto|cpu|cuda] [--iters 200] [--batches 1,64] [--record]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench import record
from moejepa_ros.control.device import check_encoder_precision, encoder_autocast, resolve_device
from moejepa_ros.control.frame_upload import FrameUpload
from moejepa_ros.model import ModelConfig, WorldModel


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def precisions(device: torch.device) -> list[str]:
    """The encoder precisions this device runs."""
    out = []
    for p in ("fp32", "fp16", "bf16"):
        try:
            check_encoder_precision(p, device)
        except ValueError:
            continue
        out.append(p)
    return out


def time_ms(fn, device: torch.device, iters: int, warmup: int = 5) -> list[float]:
    """Wall ms of `fn()` per call, synchronised, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--iters", type=int, default=200, help="timed calls per case")
    ap.add_argument("--batches", default="1,64", help="comma list of frame-stack batch sizes")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    record.add_arguments(ap, "encoder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    torch.manual_seed(0)
    cfg = ModelConfig()
    model = WorldModel(cfg).eval().to(device)
    shape = (cfg.frame_stack, cfg.image_size, cfg.image_size, 3)
    host = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    uploads = {"pinned" if device.type == "cuda" else "none": FrameUpload(device)}
    if device.type == "cuda":
        uploads["pageable"] = lambda f: torch.from_numpy(f).to(device)[None]
    rows = []
    for precision in precisions(device):
        for b in (int(x) for x in args.batches.split(",")):
            cases = uploads.items() if b == 1 else [("on_device", None)]
            for upload_name, upload in cases:
                if upload is None:
                    x = torch.randint(0, 256, (b, *shape), dtype=torch.uint8, device=device)

                    def step(x=x):
                        with torch.inference_mode(), encoder_autocast(precision, device):
                            return model.encode(x).float()
                else:

                    def step(upload=upload):
                        with torch.inference_mode(), encoder_autocast(precision, device):
                            return model.encode(upload(host))[0].float()

                ms = time_ms(step, device, args.iters)
                p50 = _pct(ms, 0.5)
                row = {
                    "bench": "encoder",
                    "device": device.type,
                    "precision": precision,
                    "batch": b,
                    "upload": upload_name,
                    "iters": len(ms),
                    "ms_p50": round(p50, 3),
                    "ms_p99": round(_pct(ms, 0.99), 3),
                    "frames_per_s": round(b / p50 * 1e3, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    meta = {
        "model": "default ModelConfig (untrained)",
        "encoder": cfg.encoder,
        "input": list(shape),
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": args.threads,
        "note": "frames/s counts frame stacks (one latent each); batch 1 includes the host-to-device upload",
    }
    record.write_result(args, {"meta": meta, "results": rows})


if __name__ == "__main__":
    main()
