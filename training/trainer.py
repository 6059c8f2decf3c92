"""The training loop shared by Stage 1, Stage 2, re-fitting in Stage 3 and the baselines.

One loop: windows -> `loss(batch, stage)` -> backward (DDP-averaged) -> clip -> AdamW with
warm-up + cosine LR -> EMA target update; bf16 autocast on GPU only; TensorBoard + tqdm on rank
0; exact-resume checkpoints (see `train_state`) every `run.ckpt_every` steps and at the end.
"""

from __future__ import annotations

import copy
import math
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from moejepa_ros.model.checkpoint import save_checkpoint
from moejepa_ros.model.encoder import cosine_momentum

from .config import TrainConfig, to_dict
from .distributed import DistInfo, all_gather_json
from .logging_utils import RunLogger, log
from .optim import WarmupCosine, make_optimizer
from .run_dir import model_changes, move_aside, record, resume_path
from .train_state import CheckpointManager, ResumeError, capture_rng, restore_rng


class LossModule(nn.Module):
    """model (+ an optional training-side wrapper such as a pixel decoder) with forward = loss.

    DDP synchronises gradients through `forward`, so the loss lives there. `extra.loss(model,
    batch, stage)` replaces `model.loss` when given (the wrapper calls it itself).
    """

    def __init__(self, model: nn.Module, stage: int, extra: nn.Module | None = None):
        super().__init__()
        self.model, self.stage, self.extra = model, stage, extra

    def forward(self, batch: dict[str, torch.Tensor]):
        if self.extra is not None:
            return self.extra.loss(self.model, batch, self.stage)
        return self.model.loss(batch, self.stage)


class Prefetcher:
    """Pulls batches from a window source in a background thread, each with the source's position
    right after it was drawn (so a checkpoint after consuming batch i resumes at batch i+1)."""

    def __init__(self, source, depth: int, pin: bool = False):
        self.source, self.depth, self.pin = source, int(depth), pin
        self._q: queue.Queue = queue.Queue(maxsize=max(1, self.depth))
        self._stop = threading.Event()
        self._thread = None
        if self.depth > 0:
            self._thread = threading.Thread(target=self._work, name="window-prefetch", daemon=True)
            self._thread.start()

    def _draw(self):
        sample = getattr(self.source, "sample", None)
        batch = sample() if callable(sample) else next(self.source)
        if self.pin:
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return batch, copy.deepcopy(self.source.state_dict())

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = ("ok", self._draw())
            except BaseException as e:  # handed to the consumer, which re-raises
                item = ("err", e)
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[0] == "err":
                return

    def next(self):
        if self._thread is None:
            return self._draw()
        kind, val = self._q.get()
        if kind == "err":
            raise val
        return val

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)


@dataclass
class TrainResult:
    step: int
    run_dir: str
    checkpoint: str  # inference checkpoint (model.safetensors) written at the end
    last_terms: dict[str, float] = field(default_factory=dict)
    samples_per_s: float = float("nan")
    data_wait_share: float = float("nan")
    elapsed_s: float = 0.0
    resumed_from: str | None = None
    verdict: dict | None = None  # `training.verdict` on the held-out episodes, where the command judges one


def _autocast(device: torch.device, precision: str):
    use = device.type == "cuda" and precision in ("auto", "bf16")
    if precision == "bf16" and device.type != "cuda":
        log.warning("run.precision=bf16 is GPU-only; training in fp32 on %s", device)
    return torch.autocast("cuda", dtype=torch.bfloat16) if use else _NullCtx()


class _NullCtx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class Trainer:
    """Runs `loss(batch, stage)` optimisation for `train.steps` with exact resume.

    `meta_fn()` supplies the checkpoint metadata (action bounds, preprocessing, training info);
    `frozen` lists parameter-name prefixes (of the model) to freeze; `lr_scale` maps model
    prefixes to LR multipliers; `extra` is a training-side module wrapped around the model.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str,
        model: nn.Module,
        source,
        stage: int,
        info: DistInfo,
        device: torch.device,
        meta_fn: Callable[[], dict],
        extra: nn.Module | None = None,
        frozen: Sequence[str] = (),
        lr_scale: dict[str, float] | None = None,
        desc: str = "train",
    ):
        self.cfg, self.run_dir, self.model, self.source = cfg, run_dir, model, source
        self.stage, self.info, self.device, self.meta_fn = stage, info, device, meta_fn
        self.extra, self.desc = extra, desc
        for name, p in model.named_parameters():
            if any(name.startswith(f) for f in frozen):
                p.requires_grad_(False)
        self.loss_module = LossModule(model, stage, extra).to(device)
        scales = {f"model.{k}": v for k, v in (lr_scale or {}).items()}
        o = cfg.optim
        self.optimizer = make_optimizer(self.loss_module, o.lr, o.weight_decay, (o.beta1, o.beta2), scales)
        self.scheduler = WarmupCosine(self.optimizer, o.lr, o.warmup_steps, cfg.train.steps, o.min_lr_ratio)
        self.ckpt = CheckpointManager(os.path.join(run_dir, "ckpt"), cfg.run.keep_ckpts)
        self.step = 0
        self.resumed_from: str | None = None
        self._stop_signal = False

    # ------------------------------------------------------------------ resume
    def maybe_resume(self) -> None:
        path = resume_path(self.cfg, self.ckpt)
        if path is None:
            return
        from safetensors.torch import load_file

        js, tensors = self.ckpt.load(path)
        changed = model_changes(js.get("config") or {}, to_dict(self.cfg))
        weights = load_file(os.path.join(path, "model.safetensors"))
        try:
            missing, unexpected = self.model.load_state_dict(weights, strict=False)
            problem = f"missing {list(missing)[:4]}, unexpected {list(unexpected)[:4]}" if missing or unexpected else ""
        except RuntimeError as e:  # a tensor of another shape
            problem = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        if problem:
            why = f"the model config changed ({'; '.join(changed)})" if changed else "the weights differ"
            raise ResumeError(
                f"{path}: cannot resume, {why}: {problem}; run.resume=never moves the old run aside and starts afresh"
            )
        if changed and self.info.is_main:
            log.warning("resuming %s with a changed model config: %s", path, "; ".join(changed))
        if js.get("stage") != self.stage:
            raise ResumeError(f"{path}: checkpoint is from stage {js.get('stage')}, this run is stage {self.stage}")
        if self.extra is not None:
            self.ckpt.load_modules(tensors, {"extra": self.extra})
        from .train_state import unflatten_optimizer

        unflatten_optimizer(self.optimizer, js["optimizer"], tensors)
        self.scheduler.load_state_dict(js["scheduler"])
        self.step = int(js["step"])
        ranks = js.get("ranks", [])
        if len(ranks) == self.info.world_size:
            mine = ranks[self.info.rank]
            restore_rng(mine["rng"])
            if mine.get("source") is not None:
                self.source.load_state_dict(mine["source"])
        else:
            log.warning(
                "checkpoint %s was written by %d rank(s), this run has %d: data order and RNG "
                "are re-seeded, so the resumed run is not bit-identical",
                path,
                len(ranks),
                self.info.world_size,
            )
            torch.manual_seed(self.cfg.run.seed + 1000003 * self.step + self.info.rank)
        self.resumed_from = path
        log.info("resumed from %s at step %d", path, self.step)

    # -------------------------------------------------------------- checkpoint
    def meta(self) -> dict:
        m = dict(self.meta_fn())
        tr = dict(m.get("training") or {})
        tr.update(stage=self.stage, step=self.step, steps=self.cfg.train.steps)
        m["training"] = tr
        return m

    def save(self, src_state: dict | None) -> str | None:
        """Collective: every rank sends its RNG + data position; rank 0 writes the checkpoint."""
        ranks = all_gather_json({"rng": capture_rng(), "source": src_state}, self.info)
        if not self.info.is_main:
            return None
        meta = self.meta()
        state = {
            "stage": self.stage,
            "scheduler": self.scheduler.state_dict(),
            "ranks": ranks,
            "world_size": self.info.world_size,
            "config": to_dict(self.cfg),
        }
        modules = {"extra": self.extra} if self.extra is not None else None
        return self.ckpt.save(
            self.step, lambda p: save_checkpoint(p, self.model, meta), self.optimizer, state, modules=modules
        )

    # -------------------------------------------------------------------- loop
    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = True

    def run(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        if info.is_main and cfg.run.resume == "never":
            move_aside(self.run_dir)
        self.maybe_resume()
        if info.is_main:
            record(self.run_dir, cfg, self.resumed_from)
        total = cfg.train.steps
        stop = min(total, cfg.train.stop_at) if cfg.train.stop_at else total
        net: nn.Module = self.loss_module
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(
                self.loss_module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )  # MoE: experts no token chose get no gradient
        logger = RunLogger(
            self.run_dir,
            info.is_main,
            cfg.run.tensorboard,
            cfg.run.progress and stop > self.step,
            total=stop,
            initial=self.step,
            desc=self.desc,
        )
        prefetch = Prefetcher(self.source, cfg.data.prefetch, pin=self.device.type == "cuda")
        old_handler = None
        if not info.enabled and threading.current_thread() is threading.main_thread():
            old_handler = signal.signal(signal.SIGTERM, self._on_signal)
        params = [p for p in self.loss_module.parameters() if p.requires_grad]
        self.model.train()
        t_start = time.perf_counter()
        src_state = self.source.state_dict() if self.step == 0 else None
        last: dict[str, float] = {}
        win_t, win_wait, win_n = 0.0, 0.0, 0
        samples_per_s = wait_share = float("nan")
        last_saved = self.step if self.resumed_from else -1
        try:
            while self.step < stop:
                t0 = time.perf_counter()
                batch, src_state = prefetch.next()
                t_data = time.perf_counter() - t0
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                if cfg.data.reward_scale != 1.0:
                    batch["rewards"] = batch["rewards"] * cfg.data.reward_scale
                with _autocast(self.device, cfg.run.precision):
                    loss, terms = net(batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite loss {loss.item()} at step {self.step}: "
                        f"terms { ({k: float(v) for k, v in terms.items()}) }"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf
                gnorm = torch.nn.utils.clip_grad_norm_(params, clip)
                self.optimizer.step()
                self.scheduler.step()
                m = cfg.optim.ema_momentum
                if m is None:
                    mc = self.model.cfg
                    m = cosine_momentum(self.step, total, mc.ema_momentum, mc.ema_momentum_final)
                self.model.update_target(m)
                self.step += 1
                dt = time.perf_counter() - t0
                win_t += dt
                win_wait += t_data
                win_n += 1
                if info.is_main:
                    last = {k: float(v) for k, v in terms.items()}
                    logger.progress(1, {k: last[k] for k in ("total", "latent") if k in last})
                if self.step % cfg.run.log_every == 0 or self.step == stop:
                    samples_per_s = win_n * cfg.data.batch_size * info.world_size / max(win_t, 1e-9)
                    wait_share = win_wait / max(win_t, 1e-9)
                    if info.is_main:
                        logger.scalars(self.step, self._scalars(last, float(gnorm), m, samples_per_s, wait_share))
                    win_t = win_wait = 0.0
                    win_n = 0
                if self.step % cfg.run.ckpt_every == 0 or self.step == stop or self._stop_signal:
                    self.save(src_state)
                    last_saved = self.step
                if self._stop_signal:
                    log.warning("SIGTERM: checkpoint written at step %d, stopping", self.step)
                    break
            if last_saved != self.step:
                self.save(src_state)
        finally:
            prefetch.close()
            logger.close()
            del net  # the DDP wrapper (and its reducer) goes before its process group does
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
        out = os.path.join(self.run_dir, "model.safetensors")
        if info.is_main:
            save_checkpoint(out, self.model, self.meta())
        return TrainResult(
            step=self.step,
            run_dir=self.run_dir,
            checkpoint=out,
            last_terms=last,
            samples_per_s=samples_per_s,
            data_wait_share=wait_share,
            elapsed_s=time.perf_counter() - t_start,
            resumed_from=self.resumed_from,
        )

    def _scalars(self, terms: dict[str, float], gnorm: float, momentum: float, sps: float, wait: float) -> dict:
        s = {f"loss/{k}": v for k, v in terms.items()}
        s.update(
            {
                "optim/lr": self.scheduler.get_lr(),
                "optim/grad_norm": gnorm,
                "optim/ema_momentum": momentum,
                "perf/samples_per_s": sps,
                "perf/data_wait_share": wait,
            }
        )
        if "z_std" in terms:
            s["latent/std"] = terms["z_std"]
        stats = self.model.routing_stats() if self.stage == 2 and hasattr(self.model, "routing_stats") else {}
        if stats:
            load = stats["load"].float().cpu()
            for i, v in enumerate(load.tolist()):
                s[f"routing/load_{i}"] = v
            s["routing/load_cv"] = float(load.std(unbiased=False) / load.mean().clamp_min(1e-9))
            s["routing/entropy"] = float(stats["entropy"])
        return s
