"""`refine`: re-fit the MoE predictor on frozen, cached latents with long open-loop rollouts.

Stage 2 (`fit`) trains encoder and predictor together; every step encodes k + H frames per
sample, which is what makes long training rollouts expensive on a CPU. Once the encoder is good,
`refine` encodes every recorded frame stack once and trains the predictor alone on those latents,
H = `refine.horizon` steps open loop, at a small fraction of a fit step's cost (the frozen-encoder
recipe of DINO-WM and V-JEPA 2-AC). Encoder, EMA target and heads are left bit-identical.

Like `fit` it shows a progress bar, writes TensorBoard scalars and metrics.jsonl under `<out_dir>/refine`, and
resumes exactly from its checkpoints there (`run.resume`, `run.ckpt_every`; see `training.run_dir`).

The summary reports the held-out open-loop gap ||ẑ_h - z_h|| / ||z_h - z_0|| at several h
(imagined vs encoded real latents, over the validation episodes) before and after, and the verdict
(`training.verdict`, also in `<out_dir>/refine/verdict.json`).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from moejepa_ros.model import losses as L
from moejepa_ros.model.checkpoint import load_checkpoint, save_derived

from .config import ConfigError, TrainConfig, to_dict
from .datasets import open_data, run_subdir
from .export import find_model
from .logging_utils import RunLogger, log
from .model_part import check_unchanged, train_only, with_new_part
from .optim import WarmupCosine, make_optimizer
from .run_dir import move_aside, record, resume_path
from .train_state import CheckpointManager, ResumeError, capture_rng, restore_rng, unflatten_optimizer

GAP_HORIZONS = (1, 5, 10, 16, 20, 36)


@torch.no_grad()
def encode_stacks(model, stacks: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Latents [N, D] of frame stacks [N, k, H, W, 3], `batch` stacks per encoder call."""
    return torch.cat([model.encode(stacks[i : i + batch].to(device)).float() for i in range(0, len(stacks), batch)])


@torch.no_grad()
def encode_episodes(
    model, cache, episodes, batch: int, device: torch.device
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per episode: latents of every frame stack [T-k+1, D] and the action after each [T-k+1, A]."""
    k = model.cfg.frame_stack
    zs, acts = [], []
    for e in episodes:
        ep = cache.episode(int(e))
        if len(ep.frames) < k + 1:
            continue
        frames = torch.from_numpy(ep.frames)
        zs.append(encode_stacks(model, frames.unfold(0, k, 1).permute(0, 4, 1, 2, 3), batch, device))  # [T-k+1, ...]
        acts.append(torch.from_numpy(np.ascontiguousarray(ep.actions[k - 1 :])).float().to(device))
    return zs, acts


@torch.no_grad()
def open_loop_gap(predictor, zs, acts, horizons=GAP_HORIZONS) -> dict[int, float]:
    """h -> mean ||ẑ_h - z_h|| / mean ||z_h - z_0|| from each episode's first latent (h < length)."""
    out = {}
    for h in horizons:
        eps = [i for i, z in enumerate(zs) if len(z) > h]
        if not eps:
            continue
        z0 = torch.stack([zs[i][0] for i in eps])
        zh = torch.stack([zs[i][h] for i in eps])
        pred = predictor.rollout(z0, torch.stack([acts[i][:h] for i in eps]))[:, -1]
        disp = (zh - z0).norm(dim=-1).mean().clamp_min(1e-9)
        out[h] = round(float((pred - zh).norm(dim=-1).mean() / disp), 4)
    return out


def latent_windows(zs, acts, horizon: int, batch: int, gen: torch.Generator):
    """A batch of (z0 [B, D], actions [B, H, A], targets [B, H, D]) from random episode offsets."""
    lens = torch.tensor([len(z) - horizon for z in zs], dtype=torch.float64)
    ep = torch.multinomial(lens, batch, replacement=True, generator=gen)
    z0, a, tgt = [], [], []
    for e in ep.tolist():
        t = int(torch.randint(0, int(lens[e]), (1,), generator=gen))
        z0.append(zs[e][t])
        a.append(acts[e][t : t + horizon])
        tgt.append(zs[e][t + 1 : t + 1 + horizon])
    return torch.stack(z0), torch.stack(a), torch.stack(tgt)


PREDICTOR_FIELDS = ("action_embed_dim", "num_experts", "top_k", "expert_hidden", "router_noise", "moe_impl", "dense")


def _fresh_predictor(model, overrides: dict, seed: int, device: torch.device):
    """The same model with a newly initialised predictor of another size (`refine.predictor`)."""
    bad = sorted(set(overrides) - set(PREDICTOR_FIELDS))
    if bad:
        raise ConfigError(f"refine.predictor: {bad} are not predictor fields (allowed: {list(PREDICTOR_FIELDS)})")
    try:
        return with_new_part(model, "predictor.", overrides, seed, device)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"refine.predictor={overrides}: {e}") from None


def _resume(path: str, ckpt: CheckpointManager, cfg: TrainConfig, src: str, model, opt, sched, gen) -> dict:
    """Load a refine checkpoint into the model, optimiser, schedule and RNGs; returns its state.json."""
    from safetensors.torch import load_file

    js, tensors = ckpt.load(path)
    if js.get("stage") != "refine" or js.get("source") != os.path.abspath(src):
        raise ResumeError(
            f"{path}: a {js.get('stage')} checkpoint of {js.get('source')}, not a refine of {os.path.abspath(src)}; "
            "run.resume=never moves the old run aside and starts afresh"
        )
    old, new = js["config"]["refine"]["predictor"], dict(cfg.refine.predictor)
    changed = f"refine.predictor: {old} -> {new}" if old != new else ""
    try:
        model.load_state_dict(load_file(os.path.join(path, "model.safetensors")))
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise ResumeError(
            f"{path}: cannot resume ({changed or 'the weights differ'}): {first}; "
            "run.resume=never moves the old run aside and starts afresh"
        ) from None
    if changed:
        log.warning("resuming %s with a changed model config: %s", path, changed)
    unflatten_optimizer(opt, js["optimizer"], tensors)
    sched.load_state_dict(js["scheduler"])
    gen.set_state(torch.tensor(js["generator"], dtype=torch.uint8))
    restore_rng(js["rng"])
    log.info("resumed from %s at step %d", path, js["step"])
    return js


def refine(cfg: TrainConfig, device: torch.device) -> dict:
    r = cfg.refine
    src = find_model(cfg, r.checkpoint, order=("fit",))
    model, meta = load_checkpoint(src, device)
    if r.predictor:
        model = _fresh_predictor(model, dict(r.predictor), cfg.run.seed, device)
    model.eval()
    data = open_data(cfg, model.cfg.image_size, model.cfg.frame_stack + 1)
    t0 = time.perf_counter()
    train_z, train_a = encode_episodes(model, data.cache, data.train_episodes, r.encode_batch, device)
    val_z, val_a = encode_episodes(model, data.cache, data.val_episodes, r.encode_batch, device)
    encode_s = time.perf_counter() - t0
    keep = [i for i, z in enumerate(train_z) if len(z) > r.horizon]
    if not keep:
        raise ConfigError(
            f"refine.horizon={r.horizon}: no training episode has {r.horizon + 1} frame stacks "
            f"(longest {max((len(z) for z in train_z), default=0)})"
        )
    train_z, train_a = [train_z[i] for i in keep], [train_a[i] for i in keep]
    frozen = train_only(model, "predictor.")
    pred = model.predictor
    gap_before = open_loop_gap(pred, val_z, val_a)
    opt = make_optimizer(pred, r.lr, cfg.optim.weight_decay, (cfg.optim.beta1, cfg.optim.beta2))
    sched = WarmupCosine(opt, r.lr, min(cfg.optim.warmup_steps, r.steps // 10), r.steps, cfg.optim.min_lr_ratio)
    lw = model.cfg.losses
    gen = torch.Generator().manual_seed(cfg.run.seed)
    torch.manual_seed(cfg.run.seed)
    run_dir = run_subdir(cfg, "refine")
    if cfg.run.resume == "never":
        move_aside(run_dir)
    ckpt = CheckpointManager(os.path.join(run_dir, "ckpt"), cfg.run.keep_ckpts)
    start, curve, resumed = 0, [], resume_path(cfg, ckpt)
    if resumed:
        js = _resume(resumed, ckpt, cfg, src, model, opt, sched, gen)
        start, curve, gap_before = int(js["step"]), [tuple(c) for c in js["curve"]], js["gap_before"]
    record(run_dir, cfg, resumed)

    def save(step: int) -> None:
        state = {
            "stage": "refine",
            "source": os.path.abspath(src),
            "scheduler": sched.state_dict(),
            "generator": gen.get_state().tolist(),
            "rng": capture_rng(),
            "curve": curve,
            "gap_before": gap_before,
            "config": to_dict(cfg),
        }
        ckpt.save(step, lambda p: save_derived(p, model, meta, {"subcommand": "refine", "step": step}), opt, state)

    logger = RunLogger(
        run_dir, True, cfg.run.tensorboard, cfg.run.progress and r.steps > start, r.steps, start, "refine"
    )
    pred.train()
    t1 = time.perf_counter()
    try:
        for step in range(start + 1, r.steps + 1):
            z0, a, tgt = latent_windows(train_z, train_a, r.horizon, r.batch_size, gen)
            out = pred.rollout(z0, a)
            latent = L.multistep_latent_loss(out, tgt, r.rho)
            bal, zl = L.moe_aux_loss(pred.last_aux, lw.load_balance, lw.router_z)
            loss = latent + bal + zl
            if not torch.isfinite(loss):
                raise FloatingPointError(f"refine: non-finite loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(pred.parameters(), cfg.optim.grad_clip)
            opt.step()
            sched.step()
            logger.progress(1)
            if step % cfg.run.log_every == 0 or step == r.steps:
                curve.append((step, float(latent.detach())))
                terms = {"latent": curve[-1][1], "load_balance": float(bal.detach()), "router_z": float(zl.detach())}
                logger.scalars(step, {**{f"loss/{k}": v for k, v in terms.items()}, "optim/lr": sched.get_lr()})
                log.info("refine step %d/%d latent %.4f", step, r.steps, curve[-1][1])
            if step % cfg.run.ckpt_every == 0 or step == r.steps:
                save(step)
    finally:
        logger.close()
    train_s = time.perf_counter() - t1
    pred.eval()
    gap_after = open_loop_gap(pred, val_z, val_a)
    check_unchanged(model, frozen, "refine")  # the contract: only the predictor moves
    tr = dict(meta.get("training") or {})
    tr.update(
        subcommand="refine",
        stage=2,
        source=os.path.abspath(src),
        config=to_dict(cfg),
        refine={
            "steps": r.steps,
            "horizon": r.horizon,
            "predictor": dict(r.predictor),
            "rho": r.rho,
            "batch_size": r.batch_size,
            "gap_before": gap_before,
            "gap_after": gap_after,
        },
    )
    out_path = os.path.join(run_dir, "model.safetensors")
    save_derived(out_path, model, meta, tr)
    from .verdict import judge_run

    verdict = judge_run(cfg, model, data, run_dir, (os.path.dirname(os.path.abspath(src)),))
    return {
        "checkpoint": out_path,
        "source": src,
        "steps": r.steps,
        "horizon": r.horizon,
        "latents": int(sum(len(z) for z in train_z)),
        "val_episodes": len(val_z),
        "encode_seconds": round(encode_s, 2),
        "train_seconds": round(train_s, 2),
        "steps_per_s": round((r.steps - start) / max(train_s, 1e-9), 1),
        "resumed_from": resumed,
        "last_latent_loss": curve[-1][1] if curve else math.nan,
        "first_latent_loss": curve[0][1] if curve else math.nan,
        "gap_before": gap_before,
        "gap_after": gap_after,
        "verdict": verdict.line(),
    }
