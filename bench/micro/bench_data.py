"""Data pipeline throughput: env frames/s, bag write frames/s, bag -> cache frames/s, sampler
batches/s next to one training step. Prints JSON and writes bench/results/data.json.

The machine is shared and noisy: variants are measured side by side in one run; compare ratios.
Goals: bag -> cache >= 5000 frames/s at 64x64 on 2 cores; sampler >= 10x faster than a step.
Run: .venv/bin/python bench/bench_data.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from moejepa_ros.sim import RandomWalkPolicy, make_env  # noqa: E402
from training.data.cache import build_cache  # noqa: E402
from training.data.sampler import WindowSampler  # noqa: E402
from training.rollouts import _BagOut, record_rollouts  # noqa: E402


def best_of(fn, repeats=3):
    """Best wall time of `repeats` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def env_fps(name, steps, policy="random", **kw):
    env = make_env(name, **kw)
    obs, info = env.reset(seed=0)
    pi = RandomWalkPolicy(seed=0) if policy == "walk" else (lambda o, i: env.action_space.sample())
    t = time.perf_counter()
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(pi(obs, info))
        if term or trunc:
            obs, info = env.reset()
    fps = steps / (time.perf_counter() - t)
    env.close()
    return fps


def bag_write_fps(tmp, frames, storage):
    """Writer alone: pre-rendered frames through the rollout bag writer (image+state+action+reward)."""
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    state, a = np.zeros(4, np.float32), np.zeros(2, np.float32)

    def run():
        p = tmp / f"w_{storage}_{time.monotonic_ns()}"
        out = _BagOut(p, storage, "Float32MultiArray", None, {})
        for g in range(frames):
            out.image(rgb, g * 1000, state)
            out.action(a, 0.0, g * 1000)
        out.writer.close()
        shutil.rmtree(p)
    return frames / best_of(run, 2)


def step_time(batch, window):
    import torch

    """One optimiser step of the project's WorldModel (default config) on a sampler batch, or a
    stand-in conv net if the model is not importable."""
    try:
        from moejepa_ros.model import WorldModel
        from moejepa_ros.model.config import ModelConfig
        model = WorldModel(ModelConfig())
        what = "moejepa_ros.model.WorldModel(ModelConfig()) stage-2 loss + backward + Adam"
        loss_fn = lambda b: model.loss(b, stage=2)[0]  # noqa: E731
    except Exception as e:  # pragma: no cover - only before the model exists
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 4, 2), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 4, 2),
                                    torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(128))
        what = f"stand-in 2-layer conv net (WorldModel unavailable: {e})"
        loss_fn = lambda b: model(b["frames"].flatten(0, 1).permute(0, 3, 1, 2).float() / 255).pow(2).mean()  # noqa: E731
    opt = torch.optim.Adam(model.parameters(), 1e-4)

    def one():
        opt.zero_grad(set_to_none=True)
        loss_fn(batch).backward()
        opt.step()
    one()  # warm-up
    return best_of(one, 3), what


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args(argv)
    q = args.quick
    # torch is imported late on purpose: spawned rollout workers re-import this main module.
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
           "note": "shared 2-core machine; figures are best-of-N, compare variants within this run"}
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        # 1. simulators
        res["env_fps"] = {"two_rooms_walk": round(env_fps("two_rooms", 500 if q else 5000, "walk", mode="data")),
                          "dmc_cartpole_64": round(env_fps("dmc:cartpole_swingup", 50 if q else 400))}
        # 2. bag writing
        n = 1000 if q else 8000
        res["bag_write_fps"] = {s: round(bag_write_fps(tmp, n, s)) for s in ("mcap", "sqlite3")}
        eps = 8 if q else 80
        for w in (1, 2):
            t = time.perf_counter()
            record_rollouts("two_rooms", "walk", eps, tmp / f"roll{w}", workers=w, seed=0)
            res[f"rollout_two_rooms_fps_workers{w}"] = round(eps * 101 / (time.perf_counter() - t))
        frames = eps * 101
        # 3. bag -> cache (two bags from the 2-worker rollout), fresh cache each time
        for w in (1, 2):
            def build():
                c = build_cache(tmp / "roll2", tmp / f"cache{w}_{time.monotonic_ns()}", workers=w)
                assert c.num_frames == frames and not c.hit
            res[f"bag_to_cache_fps_workers{w}"] = round(frames / best_of(build, 2))
        t = time.perf_counter()
        cache = build_cache(tmp / "roll2", tmp / "cache_hit", workers=2)
        build_cache(tmp / "roll2", tmp / "cache_hit")
        res["cache_hit_seconds"] = round(best_of(lambda: build_cache(tmp / "roll2", tmp / "cache_hit")), 4)
        res["cache_frames"] = cache.num_frames
        # 4. sampler vs a training step
        B, T = 64, 8
        for shift in (4, 0):
            s = WindowSampler(cache, T, B, seed=0, augment_shift=shift)
            k = 10 if q else 50
            res[f"sampler_batches_per_s_shift{shift}"] = round(k / best_of(lambda: [s.sample() for _ in range(k)], 3), 1)
        batch = WindowSampler(cache, T, B, seed=0).sample()
        st, what = step_time(batch, T)
        res["train_step_seconds"] = round(st, 4)
        res["train_step_model"] = what
        res["sampler_speedup_vs_step"] = round(res["sampler_batches_per_s_shift4"] * st, 1)
        res["goals"] = {"bag_to_cache_fps>=5000": max(res["bag_to_cache_fps_workers1"],
                                                      res["bag_to_cache_fps_workers2"]) >= 5000,
                        "sampler>=10x_step": res["sampler_speedup_vs_step"] >= 10}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(res, indent=1))
    if not q:
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "data.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
