"""Training throughput: samples/s of Stage-2 steps for the default model, MoE vs dense at equal
active parameters, side by side in one process (alternating blocks, so machine noise hits both),
and the data-wait share of a step with the real bag cache + WindowSampler + prefetch thread.

    .venv/bin/python -m bench.micro.bench_train [--steps 20] [--batch 32] [--horizon 4] [--record]
Prints JSON and writes it through `bench.record` (name `train`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from bench import record
from moejepa_ros.model.config import ModelConfig, active_predictor_params, dense_equivalent
from moejepa_ros.model.world_model import WorldModel
from training.data.cache import build_cache
from training.data.sampler import WindowSampler
from training.optim import make_optimizer
from training.rollouts import record_rollouts
from training.trainer import LossModule, Prefetcher


def step_fn(model):
    lm = LossModule(model, 2)
    opt = make_optimizer(lm, 1e-3, 0.01, (0.9, 0.99))

    def step(batch):
        loss, _ = lm(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.update_target(0.99)

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant and block")
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--horizon", type=int, default=4)
    record.add_arguments(ap, "train")
    a = ap.parse_args()
    torch.manual_seed(0)
    moe_cfg = ModelConfig()
    variants = {"moe": moe_cfg, "dense": dense_equivalent(moe_cfg)}
    with tempfile.TemporaryDirectory() as tmp:
        bags = record_rollouts("two_rooms", "walk", 16, os.path.join(tmp, "bags"), seed=0, max_steps=60)
        cache = build_cache(bags, os.path.join(tmp, "cache"), image_size=moe_cfg.image_size)
        window = moe_cfg.frame_stack + a.horizon
        models = {k: WorldModel(c).train() for k, c in variants.items()}
        steps = {k: step_fn(m) for k, m in models.items()}
        sampler = WindowSampler(cache, window, a.batch, seed=0, augment_shift=4)
        fixed = sampler.sample()
        for k in variants:  # warm-up
            steps[k](fixed)
        times = {k: [] for k in variants}
        for _ in range(a.blocks):
            for k in variants:
                t = time.perf_counter()
                for _ in range(a.steps):
                    steps[k](fixed)
                times[k].append((time.perf_counter() - t) / a.steps)
        # data wait: the real loop shape (prefetch thread) with the MoE model
        pf = Prefetcher(WindowSampler(cache, window, a.batch, seed=1, augment_shift=4), depth=2)
        wait = total = 0.0
        for _ in range(a.steps):
            t0 = time.perf_counter()
            b, _ = pf.next()
            t1 = time.perf_counter()
            steps["moe"](b)
            wait += t1 - t0
            total += time.perf_counter() - t0
        pf.close()
        t = time.perf_counter()
        for _ in range(a.steps):
            sampler.sample()
        sample_s = (time.perf_counter() - t) / a.steps
    res = {
        "note": "shared machine: compare the variants (measured in alternating blocks), not absolute figures",
        "batch": a.batch,
        "window": window,
        "steps_per_block": a.steps,
        "blocks": a.blocks,
        "variants": {
            k: {
                "samples_per_s": round(a.batch / min(v), 1),
                "step_ms_best": round(1e3 * min(v), 1),
                "step_ms_blocks": [round(1e3 * x, 1) for x in v],
                "experts": variants[k].experts,
                "top_k": variants[k].active_k,
                "expert_hidden": variants[k].expert_hidden,
                "active_predictor_params": active_predictor_params(variants[k]),
                "total_params": sum(p.numel() for p in models[k].parameters()),
            }
            for k, v in times.items()
        },
        "moe_over_dense_time": round(min(times["moe"]) / min(times["dense"]), 3),
        "data_wait_share_prefetch": round(wait / total, 4),
        "sampler_ms_per_batch": round(1e3 * sample_s, 2),
    }
    print(json.dumps(res, indent=1))
    record.write_result(a, res)


if __name__ == "__main__":
    main()
