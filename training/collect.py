"""`collect`: simulator episodes -> rosbag2 under `<out_dir>/collect/bags` (via `training.rollouts`)."""

from __future__ import annotations

import os
import shutil
import time

from .config import ConfigError, TrainConfig
from .datasets import run_subdir


def collect(cfg: TrainConfig) -> dict:
    c = cfg.collect
    out = run_subdir(cfg, "collect/bags")
    if os.path.isdir(out) and os.listdir(out):
        if not c.overwrite:
            raise ConfigError(
                f"{out} already holds bags: set collect.overwrite=true to replace them, or use another run.out_dir"
            )
        shutil.rmtree(out)
    from training.rollouts import check_policy_kwargs

    try:
        check_policy_kwargs(c.policy, c.policy_kwargs, c.env)
    except ValueError as e:
        raise ConfigError(f"collect.policy_kwargs: {e}") from None
    from training.rollouts import record_rollouts

    t0 = time.perf_counter()
    bags = record_rollouts(
        c.env,
        c.policy,
        c.episodes,
        out,
        workers=c.workers,
        storage=c.storage,
        seed=cfg.run.seed,
        max_steps=c.max_steps,
        env_kwargs=dict(c.env_kwargs),
        policy_kwargs=dict(c.policy_kwargs),
        topics=c.topics,
    )
    return {
        "bags": [str(b) for b in bags],
        "episodes": c.episodes,
        "env": c.env,
        "seconds": round(time.perf_counter() - t0, 2),
    }
