"""Simulator throughput: Two-Rooms steps/s, the mobile base's frames/s (front and down cameras, with its
data drive) and DMC cartpole_swingup frames/s: our env's fast render (tuned), its `render="suite"` (dm_control's
own pixels through one persistent camera) and dm_control's `physics.render` (defaults, a new camera per frame).

Prints one JSON line per figure and writes them all through `bench.record` (name `sim`). The machine is
shared, so the DMC variants are measured in alternating rounds in one process and compared as a
ratio; absolute figures are noisy.

    .venv/bin/python -m bench.micro.bench_sim [--seconds 2] [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from bench import record
from moejepa_ros.sim import RandomWalkPolicy, data_policy, make_env


def _timed(fn, seconds: float) -> float:
    """Calls of ``fn`` per second over about ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def bench_two_rooms(seconds: float) -> list[dict]:
    out = []
    for mode in ("goal", "data"):
        env = make_env("two_rooms", mode=mode)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        actions = rng.uniform(-2.45, 2.45, (4096, 2)).astype(np.float32)
        i = [0]

        def step():
            _, _, term, trunc, _ = env.step(actions[i[0] & 4095])
            i[0] += 1
            if term or trunc:
                env.reset()

        out.append({"bench": "two_rooms_step", "mode": mode, "steps_per_s": round(_timed(step, seconds))})
    env, pol = make_env("two_rooms", mode="data"), RandomWalkPolicy(0)
    state = list(env.reset(seed=0))

    def walk():
        obs, _, _, trunc, info = env.step(pol.act(*state))
        state[:] = env.reset() if trunc else (obs, info)

    out.append(
        {"bench": "two_rooms_step_with_random_walk_policy", "mode": "data", "steps_per_s": round(_timed(walk, seconds))}
    )
    return out


def bench_mobile_base(seconds: float) -> list[dict]:
    """Env steps/s of the mobile base (10 physics steps + one 64x64 frame each) under its data drive."""
    out = []
    for camera in ("front", "down"):
        env, pol = make_env("mobile_base", mode="data", camera=camera), data_policy("mobile_base", seed=0)
        state = list(env.reset(seed=0))

        def drive(env=env, pol=pol, state=state):
            obs, _, _, trunc, info = env.step(pol(*state))
            state[:] = env.reset() if trunc else (obs, info)

        out.append(
            {
                "bench": "mobile_base_step_with_data_drive",
                "camera": camera,
                "frames_per_s": round(_timed(drive, seconds)),
            }
        )
        env.close()
    return out


def bench_dmc(seconds: float, rounds: int) -> list[dict]:
    from dm_control import suite

    tuned = make_env("dmc:cartpole_swingup", seed=0)
    tuned.reset(seed=0)
    suite_env = make_env("dmc:cartpole_swingup", seed=0, render="suite")
    suite_env.reset(seed=0)
    raw = suite.load("cartpole", "swingup", task_kwargs={"random": 0})
    raw.reset()
    repeat = tuned.action_repeat
    a = np.zeros(1, np.float32)

    def tuned_step():
        _, _, term, trunc, _ = tuned.step(a)
        if term or trunc:
            tuned.reset()

    def suite_step():
        _, _, term, trunc, _ = suite_env.step(a)
        if term or trunc:
            suite_env.reset()

    def default_step():  # dm_control's defaults: a new Camera, default buffer, MSAA, shadows
        for _ in range(repeat):
            ts = raw.step(a)
        raw.physics.render(64, 64, camera_id=0)
        if ts.last():
            raw.reset()

    tuned_render = tuned.render
    default_render = lambda: raw.physics.render(64, 64, camera_id=0)  # noqa: E731
    steps = {"tuned": tuned_step, "suite": suite_step, "default": default_step}
    renders = {"tuned": tuned_render, "suite": suite_env.render, "default": default_render}
    res = {f"{k}_{kind}": [] for k in steps for kind in ("step", "render")}
    for _ in range(rounds):  # alternate so all see the same machine load
        for k in steps:
            res[f"{k}_step"].append(_timed(steps[k], seconds))
            res[f"{k}_render"].append(_timed(renders[k], seconds / 2))
    med = {k: float(np.median(v)) for k, v in res.items()}
    for env in (tuned, suite_env, raw):
        env.close()
    return [
        {
            "bench": "dmc_cartpole_swingup_env_step",
            "size": 64,
            "action_repeat": repeat,
            "tuned_frames_per_s": round(med["tuned_step"], 1),
            "suite_frames_per_s": round(med["suite_step"], 1),
            "default_frames_per_s": round(med["default_step"], 1),
            "ratio": round(med["tuned_step"] / med["default_step"], 2),
            "tuned_over_suite": round(med["tuned_step"] / med["suite_step"], 2),
            "note": "one rendered 64x64 frame per env step (physics x action_repeat + render); median of rounds",
        },
        {
            "bench": "dmc_cartpole_swingup_render_only",
            "size": 64,
            "tuned_frames_per_s": round(med["tuned_render"], 1),
            "suite_frames_per_s": round(med["suite_render"], 1),
            "default_frames_per_s": round(med["default_render"], 1),
            "ratio": round(med["tuned_render"] / med["default_render"], 2),
            "tuned_over_suite": round(med["tuned_render"] / med["suite_render"], 2),
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating DMC rounds")
    record.add_arguments(ap, "sim")
    args = ap.parse_args()
    meta = {"mujoco_gl": os.environ.get("MUJOCO_GL")}
    rows = []
    for row in bench_two_rooms(args.seconds) + bench_mobile_base(args.seconds) + bench_dmc(args.seconds, args.rounds):
        print(json.dumps(row), flush=True)
        rows.append(row)
    record.write_result(args, {"meta": meta, "results": rows})


if __name__ == "__main__":
    main()
