"""`joints`: fit an arm's joint-angle probe (moejepa_ros/model/joint_probe.py) on the bags' /joint_states.

The goal metric `joints` reads the probe on two kinds of latent: the goal image's (a static
stack: the frame repeated k times, as the controller encodes a goal) and the predictor's imagined
latents up to `joints.imagine_steps` ahead. So the probe is fit on an even mix of three: the encoder's
latents of the recorded stacks, of static stacks, and latents predicted open loop j = 1..imagine_steps
steps under the recorded commands, each labelled with the joint angles of its frame (as (sin, cos)
pairs, MSE; Adam, cosine schedule). The encoder, predictor and heads stay bit-identical (checked before
saving). Held-out episodes give the median / p90 angle error per kind (one line). Joint angles are the
only label and never an input; minutes on one core, no intermediate checkpoints.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from moejepa_ros.model.checkpoint import load_checkpoint, save_derived
from moejepa_ros.model.joint_probe import angle_error

from .config import ConfigError, TrainConfig
from .datasets import open_data, run_subdir
from .export import find_model
from .goal_distance import encode_goal_stacks
from .logging_utils import RunLogger, log
from .model_part import check_unchanged, fit_part, train_only, with_new_part
from .refine import encode_episodes
from .run_dir import record

PART = "joint_probe."
REPORT_STEPS = (1, 8, 24)  # imagined latents' held-out error at these steps ahead (those within imagine_steps)


class Latents:
    """Episodes' recorded-stack and static-stack latents with their joint angles, concatenated, with
    per-episode start offsets; the recorded commands for imagining ahead."""

    def __init__(self, model, cache, episodes, batch: int, device: torch.device):
        k = model.cfg.frame_stack
        eps = [int(e) for e in episodes if cache.episode_lengths[int(e)] >= k + 1]
        zs, acts = encode_episodes(model, cache, eps, batch, device)
        gs = encode_goal_stacks(model, cache, eps, batch, device)
        angles = [torch.from_numpy(np.asarray(cache.episode(e).state[k - 1 :], np.float32)).to(device) for e in eps]
        self.z, self.g, self.a, self.q = torch.cat(zs), torch.cat(gs), torch.cat(acts), torch.cat(angles)
        lens = torch.tensor([len(z) for z in zs], device=device)
        self.start = torch.cumsum(lens, 0) - lens
        self.len = lens
        self.known = torch.isfinite(self.q).all(-1)  # NaN rows: before the first /joint_states message

    def sample(self, n: int, gen: torch.Generator, j: int = 0) -> torch.Tensor:
        """`n` flat indices with a known angle, each at least `j` steps into its episode (uniform episodes)."""
        ok = self.len > j
        if not ok.any():
            raise ValueError(f"no episode has {j + 1} frame stacks")
        e = torch.nonzero(ok).reshape(-1)
        e = e[torch.randint(len(e), (n,), generator=gen).to(e.device)]
        off = j + (torch.rand(n, generator=gen).to(e.device) * (self.len[e] - j)).long()
        i = self.start[e] + off
        return i[self.known[i]]

    @torch.no_grad()
    def imagined(self, model, i: torch.Tensor, j: int) -> torch.Tensor:
        """ẑ at flat indices `i`, predicted open loop from j steps earlier under the recorded commands."""
        acts = torch.stack([self.a[i - j + s] for s in range(j)], dim=1)
        return model.predictor.rollout(self.z[i - j], acts)[:, -1]


def _targets(q: torch.Tensor) -> torch.Tensor:
    return torch.stack([q.sin(), q.cos()], -1)


def _batch(model, d: Latents, n: int, imagine: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A third each of recorded-stack, static-stack and imagined latents, with the angles of their frames."""
    m = max(1, n // 3)
    a, b = d.sample(m, gen), d.sample(m, gen)
    j = int(torch.randint(1, imagine + 1, (1,), generator=gen)) if imagine > 0 else 0
    z, q = [d.z[a], d.g[b]], [d.q[a], d.q[b]]
    if j:
        c = d.sample(m, gen, j)
        z.append(d.imagined(model, c, j))
        q.append(d.q[c])
    return torch.cat(z), torch.cat(q)


@torch.no_grad()
def held_out(model, d: Latents, imagine: int, seed: int, n: int = 2000) -> dict:
    """Median / p90 angle error (max over joints, radians) of recorded, static and imagined latents."""
    gen = torch.Generator().manual_seed(seed)
    out = {}

    def summary(z, q):
        err = angle_error(model.joint_angles(z), q).max(-1).values
        return {"n": len(err), "median": round(float(err.median()), 4), "p90": round(float(err.quantile(0.9)), 4)}

    i = d.sample(n, gen)
    out["recorded"], out["static"] = summary(d.z[i], d.q[i]), summary(d.g[i], d.q[i])
    for j in (j for j in REPORT_STEPS if j <= imagine):
        if (d.len > j).any():
            i = d.sample(n, gen, j)
            out[f"imagined_{j}"] = summary(d.imagined(model, i, j), d.q[i])
    return out


def joint_probe(cfg: TrainConfig, device: torch.device) -> dict:
    jc = cfg.joints
    src = find_model(cfg, jc.checkpoint, order=("goal", "refine", "fit"))
    base, meta = load_checkpoint(src, device)
    data = open_data(cfg, base.cfg.image_size, base.cfg.frame_stack + 1)
    if data.cache.state is None:
        raise ConfigError(
            "joints: the bags have no state to learn the joint angles from (record /joint_states; "
            "data.topics.preset=arm reads it)"
        )
    try:
        model = with_new_part(
            base,
            PART,
            {"joint_probe": int(data.cache.state_dim), "joint_probe_hidden": jc.hidden},
            cfg.run.seed,
            device,
        )
    except ValueError as e:
        raise ConfigError(f"joints.hidden: {e}") from None
    model.eval()
    frozen = train_only(model, PART)
    t0 = time.perf_counter()
    train = Latents(model, data.cache, data.train_episodes, jc.encode_batch, device)
    val = Latents(model, data.cache, data.val_episodes, jc.encode_batch, device) if len(data.val_episodes) else None
    encode_s = time.perf_counter() - t0
    run_dir = run_subdir(cfg, "joints")
    os.makedirs(run_dir, exist_ok=True)
    record(run_dir, cfg)
    logger = RunLogger(run_dir, True, cfg.run.tensorboard, cfg.run.progress, jc.steps, 0, "joints")
    gen = torch.Generator().manual_seed(cfg.run.seed)
    probe = model.joint_probe

    def step_loss():
        z, q = _batch(model, train, jc.batch_size, jc.imagine_steps, gen)
        return F.mse_loss(probe.pairs(z), _targets(q))

    def on_step(step, loss):
        logger.progress(1)
        if step % cfg.run.log_every == 0 or step == jc.steps:
            logger.scalars(step, {"loss/joints": loss.item()})

    fit_part(probe, jc.steps, jc.lr, step_loss, "joints", on_step)
    check_unchanged(model, frozen, "joints")
    report = held_out(model, val, jc.imagine_steps, cfg.run.seed) if val is not None else {}
    line = "joints held-out angle error (max over joints) median/p90 rad: " + (
        " | ".join(f"{k} {v['median']:.3f}/{v['p90']:.3f}" for k, v in report.items()) or "no held-out episodes"
    )
    log.info("%s", line)
    training = {"command": "joints", "source": src, "steps": jc.steps, "held_out": report}
    path = save_derived(os.path.join(run_dir, "model.safetensors"), model, meta, training)
    logger.close()
    return {
        "checkpoint": str(path),
        "source": src,
        "held_out": report,
        "line": line,
        "encode_seconds": round(encode_s, 2),
    }
