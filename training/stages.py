"""Stage 1 (`pretrain`: action-free JEPA on video) and Stage 2 (`fit`: MoE world model + heads).

Both are the shared `Trainer` loop over windows from the bag cache; they differ in the loss
stage, the run sub-directory, and for Stage 2 an optional Stage-1 encoder (frozen or fine-tuned)
and the baseline switches (dense predictor at equal active parameters, pixel reconstruction).
`fit` ends with the verdict on the held-out episodes (`training.verdict`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.model.config import ModelConfig, dense_equivalent
from moejepa_ros.model.world_model import WorldModel

from .config import ConfigError, TrainConfig, to_dict
from .datasets import Data, action_bounds, open_data, run_subdir
from .distributed import DistInfo
from .logging_utils import log
from .trainer import Trainer, TrainResult

ENCODER_PREFIXES = ("encoder.", "target_encoder.")


def model_config(cfg: TrainConfig, action_dim: int | None = None) -> ModelConfig:
    """ModelConfig from `model:` (+ the data's action_dim), with the `dense` baseline applied."""
    d = dict(cfg.model)
    if action_dim is not None:
        if "action_dim" in d and int(d["action_dim"]) != int(action_dim):
            raise ConfigError(f"model.action_dim={d['action_dim']} but the data's actions have {action_dim} dims")
        d["action_dim"] = int(action_dim)
    try:
        mc = ModelConfig.from_dict(d)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"model: {e}") from e
    if cfg.baseline.kind == "dense" and not mc.dense:
        mc = dense_equivalent(mc)
    if mc.stage1_max_offset < cfg.data.horizon:
        raise ConfigError(f"data.horizon={cfg.data.horizon} exceeds model.stage1_max_offset={mc.stage1_max_offset}")
    return mc


def make_meta_fn(cfg: TrainConfig, model: WorldModel, data: Data, subcommand: str) -> Callable[[], dict]:
    low, high = action_bounds(cfg, data.cache)
    pre = dict(model.preprocessing)
    pre.update(
        resize="cv2.INTER_AREA to image_size",
        source_topic=data.cache.index["topics"]["image_topic"],
        time_step_s=data.cache.time_step_s,  # the rate the model was trained at (median image interval)
        **data.cache.ranges.to_dict(),  # depth / mono16 -> 0..255, which planner_node applies too
    )
    info = {
        "subcommand": subcommand,
        "config": to_dict(cfg),
        "baseline": cfg.baseline.kind,
        "reward_scale": cfg.data.reward_scale,
        "data": {
            "cache": str(data.cache.root),
            "episodes": int(data.cache.num_episodes),
            "frames": int(data.cache.num_frames),
            "train_episodes": len(data.train_episodes),
            "val_episodes": [int(e) for e in data.val_episodes],
        },
    }
    return lambda: {"action_low": low, "action_high": high, "preprocessing": pre, "training": info}


def load_encoder(model: WorldModel, path: str) -> None:
    """Copy encoder + target-encoder weights from a (Stage-1) checkpoint; shapes must match."""
    src, _ = load_checkpoint(path)
    sd, mine = src.state_dict(), model.state_dict()
    moved = 0
    for k, v in sd.items():
        if k.startswith(ENCODER_PREFIXES):
            if k not in mine or mine[k].shape != v.shape:
                raise ConfigError(
                    f"fit.init_encoder={path}: encoder tensor {k} {tuple(v.shape)} does not fit "
                    f"this model ({tuple(mine[k].shape) if k in mine else 'absent'}); "
                    "use the same encoder settings as the Stage-1 run"
                )
            mine[k] = v
            moved += 1
    model.load_state_dict(mine)
    log.info("initialised %d encoder tensors from %s", moved, path)


def resolve_init_encoder(cfg: TrainConfig) -> str:
    p = cfg.fit.init_encoder
    if cfg.baseline.kind == "no_pretrain" or not p:
        return ""
    if p == "auto":
        p = os.path.join(run_subdir(cfg, "pretrain"), "model.safetensors")
        if not os.path.isfile(p):
            raise ConfigError(f"fit.init_encoder=auto but {p} does not exist: run `moejepa-train pretrain` first")
    if not os.path.isfile(p):
        raise ConfigError(f"fit.init_encoder={p!r} does not exist")
    return p


def build(
    cfg: TrainConfig, stage: int, sources: list[str] | None = None, data: Data | None = None
) -> tuple[WorldModel, Data]:
    """Seeded model construction (identical on every rank) + the data it trains on."""
    mc0 = model_config(cfg)
    if data is None:
        data = open_data(cfg, mc0.image_size, mc0.frame_stack + cfg.data.horizon, sources)
    mc = model_config(cfg, data.cache.action_dim)
    torch.manual_seed(cfg.run.seed)
    return WorldModel(mc), data


def train_stage(
    cfg: TrainConfig,
    stage: int,
    subdir: str,
    info: DistInfo,
    device: torch.device,
    sources: list[str] | None = None,
    init_weights: WorldModel | None = None,
    desc: str | None = None,
) -> TrainResult:
    """Run one training stage into `<out_dir>/<subdir>` (resuming there when it has checkpoints)."""
    model, data = build(cfg, stage, sources)
    frozen, scales, extra = (), {}, None
    if init_weights is not None:
        model.load_state_dict(init_weights.state_dict())
    if stage == 2:
        enc = resolve_init_encoder(cfg)
        if enc and init_weights is None:
            load_encoder(model, enc)
        if enc and cfg.fit.freeze_encoder:
            frozen = ("encoder.",)
        elif cfg.optim.encoder_lr_scale != 1.0:
            scales = {"encoder.": cfg.optim.encoder_lr_scale}
    from .aux_losses import build_aux

    low, high = action_bounds(cfg, data.cache)
    scale = [max(1e-6, abs(lo), abs(hi)) for lo, hi in zip(low, high, strict=True)]  # per action dimension
    extra = build_aux(cfg if stage == 2 else _no_baseline(cfg), model.cfg, scale)
    if extra is not None:
        extra.to(device)
    model.to(device)
    # identical init on every rank (above); from here each rank draws its own noise (router, negatives)
    torch.manual_seed(cfg.run.seed + 1_000_003 * (info.rank + 1))
    window = model.cfg.frame_stack + cfg.data.horizon
    far = cfg.fit.reach if cfg.fit.reach_weight > 0 else 0
    source = data.sampler(
        window,
        cfg.data.batch_size,
        cfg.run.seed + 7919 * info.rank,
        cfg.data.augment_shift,
        far=far,
        far_from=model.cfg.frame_stack - 1,
    )
    run_dir = run_subdir(cfg, subdir)
    sub = subdir.split("/")[0]
    trainer = Trainer(
        cfg,
        run_dir,
        model,
        source,
        stage,
        info,
        device,
        make_meta_fn(cfg, model, data, sub),
        extra=extra,
        frozen=frozen,
        lr_scale=scales,
        desc=desc or subdir,
    )
    res = trainer.run()
    if info.is_main:
        log.info(
            "%s: step %d, %s -> %s",
            subdir,
            res.step,
            ", ".join(f"{k}={v:.4g}" for k, v in res.last_terms.items() if k in ("total", "latent", "reward")),
            res.checkpoint,
        )
    return res


def _no_baseline(cfg: TrainConfig) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(cfg, baseline=dataclasses.replace(cfg.baseline, kind="none"))


def pretrain(cfg: TrainConfig, info: DistInfo, device: torch.device) -> TrainResult:
    return train_stage(cfg, 1, "pretrain", info, device)


def fit(cfg: TrainConfig, info: DistInfo, device: torch.device) -> TrainResult:
    """Stage 2, then (rank 0) the verdict on the held-out episodes: `<out_dir>/fit/verdict.json`."""
    res = train_stage(cfg, 2, "fit", info, device)
    if info.is_main:
        from .verdict import judge_run

        model, _ = load_checkpoint(res.checkpoint, device)
        data = open_data(cfg, model.cfg.image_size, model.cfg.frame_stack + 1)
        res.verdict = judge_run(cfg, model.eval(), data, res.run_dir).to_dict()
    return res
