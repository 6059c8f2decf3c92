"""Benchmark the MoE predictor's expert evaluation: batched (grouped / masked) vs naive loop vs dense.

One JSON line per case on stdout; all cases through `bench.record` (name `moe`). Variants of a case run
interleaved (round robin) and the figure is the minimum over repeats, so a shared, noisy machine
still gives fair *ratios*; compare ratios from one run, not absolute numbers across runs.

    .venv/bin/python -m bench.micro.bench_moe            # 1 and 2 threads, CPU (+ GPU when available)
    .venv/bin/python -m bench.micro.bench_moe --quick    # fewer repeats / sizes
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench import record
from moejepa_ros.model import ModelConfig, WorldModel, dense_equivalent
from moejepa_ros.model.predictor import Predictor

BATCHES = [1, 16, 64, 256, 1024, 4096, 8192]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, inner):
    sync(device)
    t = time.perf_counter()
    for _ in range(inner):
        fn()
    sync(device)
    return (time.perf_counter() - t) / inner


def race(fns: dict, device, repeats: int, budget_s: float = 2.0) -> dict:
    """Round-robin timing of several callables; returns min and median seconds per call.

    A variant that raises (e.g. grouped_mm unsupported on some GPU/dtype) is dropped and
    reported as (nan, error message)."""
    failed = {}
    for k, fn in list(fns.items()):  # warm up
        try:
            fn()
        except (RuntimeError, NotImplementedError) as exc:
            failed[k] = (float("nan"), str(exc).splitlines()[0])
            del fns[k]
    one = max(timed(fn, device, 1) for fn in fns.values())
    inner = max(1, min(50, int(0.02 / max(one, 1e-6))))
    repeats = max(3, min(repeats, int(budget_s / max(one * inner * len(fns), 1e-6))))
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn, device, inner))
    out = {k: (min(v), sorted(v)[len(v) // 2]) for k, v in times.items()}
    out.update(failed)
    return out


def emit_race(emit, res: dict, case: dict, key: str, digits: int = 3, extra=lambda tmin: {}) -> None:
    """One record per variant `key` of a `race` result: `case`'s fields, then its error or its ms and ratio to dense."""
    for name, (tmin, tmed) in res.items():
        if isinstance(tmed, str):
            emit({**case, key: name, "error": tmed})
            continue
        emit(
            {
                **case,
                key: name,
                "ms_min": round(tmin * 1e3, digits),
                "ms_median": round(tmed * 1e3, digits),
                "vs_dense": round(tmin / res["dense"][0], 3),
                **extra(tmin),
            }
        )


def make_predictors(cfg: ModelConfig, device):
    torch.manual_seed(0)
    moe = Predictor(cfg).to(device).eval()
    with torch.no_grad():  # a decisive router, like a trained one (init std 0.02 is near-uniform)
        moe.moe.router.weight.normal_(std=1.0 / (cfg.latent_dim + cfg.action_embed_dim) ** 0.5 * 4)
    dense = Predictor(dense_equivalent(cfg)).to(device).eval()
    return moe, dense


def tokens(cfg, T, routing, device, gen):
    if routing == "concentrated":  # planning: every sample starts from one latent, nearby actions
        z = torch.softmax(torch.randn(1, cfg.latent_dim // 8, 8, generator=gen), -1).reshape(1, -1).expand(T, -1)
        a = (torch.randn(T, cfg.action_dim, generator=gen) * 0.3).clamp(-1, 1)
    else:
        z = torch.softmax(torch.randn(T, cfg.latent_dim // 8, 8, generator=gen) * 3, -1).reshape(T, -1)
        a = torch.rand(T, cfg.action_dim, generator=gen) * 2 - 1
    return z.contiguous().to(device), a.to(device)


def bench_step(cfg, device, batches, repeats, emit):
    moe, dense = make_predictors(cfg, device)
    gen = torch.Generator().manual_seed(0)
    for routing in ("random", "concentrated"):
        for T in batches:
            z, a = tokens(cfg, T, routing, device, gen)
            with torch.no_grad():
                e, ed = moe.embed(a), dense.embed(a)
                _, idx, _ = moe.moe.route(z, e)
                load = torch.bincount(idx.reshape(-1), minlength=cfg.num_experts).float()
                load = (load / load.sum()).tolist()
                fns = {
                    impl: (lambda impl=impl: moe.moe(z, e, impl=impl, need_aux=False))
                    for impl in ("grouped", "masked", "loop")
                }
                fns["auto"] = lambda: moe.moe(z, e, impl="auto", need_aux=False)
                fns["dense"] = lambda: dense.moe(z, ed, need_aux=False)
                res = race(fns, device, repeats)
            case = {
                "case": "moe_step",
                "device": device.type,
                "threads": torch.get_num_threads(),
                "routing": routing,
                "batch": T,
            }
            emit_race(
                emit,
                res,
                case,
                "impl",
                digits=4,
                extra=lambda tmin: {
                    "tokens_per_s": round(T / tmin),
                    "vs_loop": round(tmin / res["loop"][0], 3),
                    "expert_load": [round(x, 3) for x in load],
                },
            )


def bench_plan(cfg, device, repeats, emit, samples=256, horizon=5, iterations=4):
    """A CEM-shaped workload: `iterations` × (rollout of samples×horizon from one latent + reward)."""
    torch.manual_seed(0)
    wm = WorldModel(cfg).to(device).eval()
    wmd = WorldModel(dense_equivalent(cfg)).to(device).eval()
    with torch.no_grad():
        wm.predictor.moe.router.weight.normal_(std=4.0 / (cfg.latent_dim + cfg.action_embed_dim) ** 0.5)
    z0 = torch.softmax(torch.randn(1, cfg.latent_dim // 8, 8), -1).reshape(1, -1).to(device)
    acts = (torch.randn(samples, horizon, cfg.action_dim) * 0.5).clamp(-1, 1).to(device)

    def plan(model, impl=None, shared=True):
        if impl:
            model.predictor.moe.impl = impl
        z = z0 if shared else z0.expand(samples, -1).clone()
        for _ in range(iterations):
            zs = model.rollout(z, acts)
            model.reward(torch.cat([z.expand(samples, -1)[:, None], zs[:, :-1]], 1), acts).sum()

    with torch.no_grad():
        fns = {f"moe_{impl}": (lambda impl=impl: plan(wm, impl)) for impl in ("auto", "grouped", "masked", "loop")}
        fns["moe_auto_no_shared_fast_path"] = lambda: plan(wm, "auto", shared=False)
        fns["dense"] = lambda: plan(wmd)
        res = race(fns, device, repeats, budget_s=4.0)
    case = {
        "case": "plan",
        "device": device.type,
        "threads": torch.get_num_threads(),
        "samples": samples,
        "horizon": horizon,
        "iterations": iterations,
        "predictor_steps": samples * horizon * iterations,
    }
    emit_race(emit, res, case, "variant")


def bench_train(cfg, device, repeats, emit, T=1024):
    """Forward + backward of one predictor step (training), batched vs loop vs dense."""
    moe, dense = make_predictors(cfg, device)
    moe.train(), dense.train()
    gen = torch.Generator().manual_seed(1)
    z, a = tokens(cfg, T, "random", device, gen)

    def fb(p, impl=None):
        if impl:
            p.moe.impl = impl
        p.zero_grad(set_to_none=True)
        p(z, a).square().sum().backward()

    fns = {impl: (lambda impl=impl: fb(moe, impl)) for impl in ("grouped", "masked", "loop")}
    fns["dense"] = lambda: fb(dense)
    res = race(fns, device, repeats)
    emit_race(
        emit, res, {"case": "train_step", "device": device.type, "threads": torch.get_num_threads(), "batch": T}, "impl"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma list of CPU thread counts to run")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true")
    record.add_arguments(ap, "moe")
    args = ap.parse_args(argv)
    threads = [int(t) for t in str(args.threads).split(",")]
    cfg = ModelConfig()
    records = []

    def emit(rec):
        print(json.dumps(rec), flush=True)
        records.append(rec)

    batches = [1, 64, 1024, 4096] if args.quick else BATCHES
    repeats = 5 if args.quick else args.repeats
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for dev in devices:
        for th in threads if dev.type == "cpu" else threads[-1:]:
            torch.set_num_threads(th)
            bench_step(cfg, dev, batches, repeats, emit)
            bench_plan(cfg, dev, repeats, emit)
            bench_train(cfg, dev, repeats, emit)
    meta = {
        "threads": threads,
        "model_config": cfg.to_dict(),
        "dense_expert_hidden": dense_equivalent(cfg).expert_hidden,
        "note": "variants timed round-robin, min over repeats; machine shared: use ratios",
    }
    record.write_result(args, {"meta": meta, "results": records})


if __name__ == "__main__":
    main()
