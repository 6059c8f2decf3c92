"""Data pipeline throughput: env frames/s, bag write frames/s, bag -> cache frames/s, sampler
batches/s next to one training step. Prints JSON and writes it through `bench.record` (name `data`).

The machine is shared and noisy: variants are measured side by side in one run; compare ratios.
Goals: bag -> cache >= 5000 frames/s at 64x64 on 2 cores; sampler >= 10x faster than a step. Also the
ingest rate of a bag whose mcap file is cut short (its readable prefix, read in one forward pass).
Run: .venv/bin/python -m bench.micro.bench_data [--quick] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from bench import record
from moejepa_ros.sim import RandomWalkPolicy, make_env
from training.data.cache import build_cache
from training.data.sampler import WindowSampler
from training.rollouts import record_rollouts


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
    """Writer alone: pre-rendered frames into a rollout-shaped bag (image + state + action + reward per frame)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from moejepa_ros.codecs import make_image

    ts = get_typestore(Stores.ROS2_KILTED)
    types = {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        "/state": "std_msgs/msg/Float32MultiArray",
        "/action": "std_msgs/msg/Float32MultiArray",
        "/reward": "std_msgs/msg/Float32",
    }
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    layout = ts.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    array = ts.types["std_msgs/msg/Float32MultiArray"]
    msgs = {
        "/state": array(layout=layout, data=np.zeros(4, np.float32)),
        "/action": array(layout=layout, data=np.zeros(2, np.float32)),
        "/reward": ts.types["std_msgs/msg/Float32"](data=0.0),
    }
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3

    def run():
        p = tmp / f"w_{storage}_{time.monotonic_ns()}"
        with Writer(p, version=9, storage_plugin=plugin) as w:
            conns = {t: w.add_connection(t, ty, typestore=ts) for t, ty in types.items()}
            for g in range(frames):
                stamp = g * 1000
                msgs["/camera/image_raw"] = make_image(ts.types["sensor_msgs/msg/Image"], rgb, "rgb8", stamp, "camera")
                for topic, msg in msgs.items():
                    w.write(conns[topic], stamp, ts.serialize_cdr(msg, types[topic]))
        shutil.rmtree(p)

    return frames / best_of(run, 2)


def truncated_mcap_fps(bags: Path, tmp: Path) -> dict:
    """Ingest rate of one rollout bag whose mcap file is cut at 60 % (a recorder that lost power): read
    forward up to the cut in one pass (data.skip_bad), frames kept per second, beside the intact bag's."""
    from training.data.bag_reader import find_bags

    bag = find_bags(bags)[0]
    cut = tmp / "cut_bag"
    shutil.copytree(bag, cut)
    (f,) = cut.glob("*.mcap")
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * 0.6)])
    out = {}
    for name, src in (("intact", bag), ("cut_at_60%", cut)):

        def build():
            c = build_cache(src, tmp / f"cache_{name}_{time.monotonic_ns()}", workers=1, skip_bad=True)
            out[f"{name}_frames"] = c.num_frames

        secs = best_of(build, 2)
        out[f"{name}_fps"] = round(out[f"{name}_frames"] / secs)
    return out


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
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 4, 2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 4, 2),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.LazyLinear(128),
        )
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
    record.add_arguments(ap, "data")
    args = ap.parse_args(argv)
    q = args.quick
    # torch is imported late on purpose: spawned rollout workers re-import this main module.
    res = {
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "note": "shared 2-core machine; figures are best-of-N, compare variants within this run",
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        # 1. simulators
        res["env_fps"] = {
            "two_rooms_walk": round(env_fps("two_rooms", 500 if q else 5000, "walk", mode="data")),
            "dmc_cartpole_64": round(env_fps("dmc:cartpole_swingup", 50 if q else 400)),
        }
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
        res["truncated_mcap"] = truncated_mcap_fps(tmp / "roll2", tmp)
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
            res[f"sampler_batches_per_s_shift{shift}"] = round(
                k / best_of(lambda: [s.sample() for _ in range(k)], 3), 1
            )
        batch = WindowSampler(cache, T, B, seed=0).sample()
        st, what = step_time(batch, T)
        res["train_step_seconds"] = round(st, 4)
        res["train_step_model"] = what
        res["sampler_speedup_vs_step"] = round(res["sampler_batches_per_s_shift4"] * st, 1)
        res["goals"] = {
            "bag_to_cache_fps>=5000": max(res["bag_to_cache_fps_workers1"], res["bag_to_cache_fps_workers2"]) >= 5000,
            "sampler>=10x_step": res["sampler_speedup_vs_step"] >= 10,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(res, indent=1))
    record.write_result(args, res)
    return res


if __name__ == "__main__":
    main()
