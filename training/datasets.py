"""From the config to training data: bags -> decoded cache -> train/val episode split -> samplers.

Also decides the action bounds written into checkpoints (explicit > simulator > data range).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from training.data.cache import DataCache, build_cache
from training.data.report import report_data
from training.data.sampler import WindowSampler
from training.data.topics import TopicConfig

from .config import ConfigError, TrainConfig, grey_ranges


def run_subdir(cfg: TrainConfig, name: str) -> str:
    return os.path.join(cfg.run.out_dir, name)


def bag_sources(cfg: TrainConfig) -> list[str]:
    """`data.bags`, else what `collect` (and `mbrl`) wrote under the run dir."""
    if cfg.data.bags:
        missing = [b for b in cfg.data.bags if not os.path.exists(b)]
        if missing:
            raise ConfigError(f"data.bags: {missing} do not exist")
        return list(cfg.data.bags)
    out = []
    for sub in ("collect/bags", "mbrl/bags"):
        d = run_subdir(cfg, sub)
        if os.path.isdir(d) and os.listdir(d):
            out.append(d)
    if not out:
        raise ConfigError(
            f"data.bags is empty and {run_subdir(cfg, 'collect/bags')} has no bags: "
            "run `moejepa-train collect` first or set data.bags=[...]"
        )
    return out


@dataclass
class Data:
    cache: DataCache
    train_episodes: np.ndarray
    val_episodes: np.ndarray

    def sampler(
        self,
        window: int,
        batch_size: int,
        seed: int,
        augment_shift: int,
        val: bool = False,
        with_state: bool = True,
        far: int = 0,
        far_from: int = 0,
    ) -> WindowSampler:
        eps = self.val_episodes if val and len(self.val_episodes) else self.train_episodes
        return WindowSampler(
            self.cache,
            window,
            batch_size,
            seed=seed,
            augment_shift=augment_shift,
            episodes=eps,
            with_state=with_state,
            far=far,
            far_from=far_from,
        )


def open_data(cfg: TrainConfig, image_size: int, min_len: int = 1, sources: list[str] | None = None) -> Data:
    """Build/open the cache for the configured bags and split episodes into train / validation.

    The last `data.val_episodes` usable episodes (length >= `min_len`) are held out, but never
    all of them: at least one usable episode always stays in training.
    """
    try:
        topics = TopicConfig.from_dict(dict(cfg.data.topics)) if cfg.data.topics else TopicConfig()
    except (ValueError, TypeError) as e:
        raise ConfigError(f"data.topics: {e}") from e
    cache_dir = cfg.data.cache_dir or run_subdir(cfg, "cache")
    cache = build_cache(
        sources or bag_sources(cfg),
        cache_dir,
        topics,
        image_size,
        skip_bad=cfg.data.skip_bad,
        ranges=grey_ranges(cfg.data),
    )
    report_data(cache, cfg.run.out_dir)
    usable = np.flatnonzero(cache.episode_lengths >= min_len)
    if len(usable) == 0:
        raise ConfigError(
            f"no episode in {cache.root} has the {min_len} frames a window needs "
            f"(longest {int(cache.episode_lengths.max())}); lower data.horizon or record longer episodes"
        )
    n_val = min(cfg.data.val_episodes, len(usable) - 1)
    train, val = (usable[:-n_val], usable[-n_val:]) if n_val > 0 else (usable, usable[:0])
    return Data(cache, train, val)


def action_bounds(
    cfg: TrainConfig, cache: DataCache | None = None, env_name: str | None = None
) -> tuple[list[float], list[float]]:
    """Bounds for the checkpoint: export.action_low/high > the simulator's action_space > data min/max."""
    if cfg.export.action_low:
        return list(map(float, cfg.export.action_low)), list(map(float, cfg.export.action_high))
    name = env_name if env_name is not None else (cfg.collect.env if not cfg.data.bags else None)
    if name:
        from moejepa_ros.sim import make_env

        env = make_env(name, **dict(cfg.collect.env_kwargs))
        try:
            lo, hi = env.action_space.low, env.action_space.high
        finally:
            env.close()
        return [float(v) for v in lo], [float(v) for v in hi]
    if cache is None:
        raise ConfigError("action bounds unknown: set export.action_low / export.action_high")
    a = cache.actions
    lo, hi = a.min(axis=0), a.max(axis=0)
    hi = np.where(hi > lo, hi, lo + 1e-3)
    return [float(v) for v in lo], [float(v) for v in hi]
