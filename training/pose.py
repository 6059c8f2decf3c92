"""`pose`: learn the relative-pose parts of a world model from the bags' odometry.

The goal metric `pose` (planning/objectives/goal.py) plans a goal image in the robot's plane, where the
JEPA latent's pose is too coarse on a mobile base (BENCHMARKS.md section 8.1). Three small parts learn
what it needs (moejepa_ros/model/relative_pose.py):

- the pair pose net R(image, goal image) → where the goal image was taken, in the image's robot frame.
  Its pairs come from ONE drive each (odometry is only consistent within a drive on a real robot):
  `pose.near_share` of them at most `pose.near_frames` frames apart, the rest any two frames of the drive
  within `pose.max_distance` and `pose.max_turn` (by rejection);
- the motion model M(last K executed commands, the next H_m commands zero-padded after h, h / H_m) → the
  pose after h steps, from the recorded commands and odometry at random h in 1..H_m;
- the place net L(image) → where the image was taken in the odometry's frame (`pose.place_steps`, single
  frames of every drive). It can only learn where the drives' odometry shares one frame (a robot localised
  in a map, one recording without drift, our simulators); it places a goal as L(goal) ⊖ L(image).

R and M regress (dx, dy, c·sin dψ, c·(cos dψ − 1)), L (x, y, c·cos ψ, c·sin ψ), each with a smooth-L1 loss
(Adam, cosine schedule); the encoder, predictor and heads stay bit-identical (checked before saving).
Held-out drives (the data's validation episodes) give one line each: R's and L's median / p90 error by
distance on the same pairs, M's at a few horizons. L is kept only when it places the held-out pairs at
least `PLACE_FROM` apart better than R (median position error); otherwise R places goals and L is dropped,
with the reason in one line. Odometry is the only label and never an input. The stage is short (minutes
on one core): it writes no intermediate checkpoints and a second run starts again.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from moejepa_ros.model.checkpoint import load_checkpoint, save_derived
from moejepa_ros.model.config import RelativePoseConfig
from moejepa_ros.model.free_space import FreeSpace
from moejepa_ros.model.relative_pose import place_to_vector, pose_to_vector, relative_pose, vector_to_pose

from .config import ConfigError, TrainConfig, to_dict
from .data.state import POSE_NAMES
from .datasets import open_data, run_subdir
from .export import find_model
from .logging_utils import RunLogger, log
from .model_part import check_unchanged, fit_part, train_only, with_new_part
from .run_dir import record

PARTS = ("pose_net.", "motion_model.", "place_net.")
DISTANCE_BINS = (0.0, 0.05, 0.15, 0.4, math.inf)  # metres: held-out placement error by how far the goal is
PLACE_FROM = 0.15  # metres: L against R on held-out pairs at least this far apart (goals beyond the near ones)
MOTION_REPORT_H = (3, 12, 24)  # steps: M's held-out error at these horizons (those within H_m)


class Drives:
    """Episodes' frames, commands and odometry concatenated, with per-drive start offsets."""

    def __init__(self, frames: torch.Tensor, actions: torch.Tensor, states: torch.Tensor, lens: list[int]):
        """frames [N, S, S, 3] uint8, actions [N, A] (real units), states [N, 3] (x, y, yaw), drive lengths."""
        self.frames, self.actions, self.states = frames, actions.float(), states.float()
        self.len = torch.tensor(lens)
        self.start = torch.cumsum(self.len, 0) - self.len
        self.known = torch.isfinite(self.states).all(-1)  # NaN rows: before the first odometry message

    @classmethod
    def from_cache(cls, cache, episodes) -> Drives:
        eps = [cache.episode(int(e)) for e in episodes]
        return cls(
            torch.from_numpy(np.concatenate([ep.frames for ep in eps])),
            torch.from_numpy(np.concatenate([ep.actions for ep in eps]).astype(np.float32)),
            torch.from_numpy(np.concatenate([ep.state for ep in eps]).astype(np.float32)),
            [len(ep) for ep in eps],
        )

    def pairs(self, n: int, pc, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(frame index a, frame index b, pose of b in a's frame [n, 3]) for n pairs of one drive each."""
        out_a, out_b, need = [], [], n
        for _ in range(1000):
            m = 4 * need
            ep = torch.randint(0, len(self.len), (m,), generator=gen)
            lo, ln = self.start[ep], self.len[ep]
            i = (torch.rand(m, generator=gen) * ln).long()
            near = torch.rand(m, generator=gen) < pc.near_share
            step = torch.randint(-pc.near_frames, pc.near_frames + 1, (m,), generator=gen)
            j = torch.where(near, (i + step).clamp(min=0).minimum(ln - 1), (torch.rand(m, generator=gen) * ln).long())
            a, b = lo + i, lo + j
            ok = self.known[a] & self.known[b]
            r = relative_pose(self.states[a], self.states[b])
            ok &= (r[:, :2].norm(dim=-1) <= pc.max_distance) & (r[:, 2].abs() <= pc.max_turn)
            out_a.append(a[ok][:need]), out_b.append(b[ok][:need])
            need -= len(out_a[-1])
            if need == 0:
                a, b = torch.cat(out_a), torch.cat(out_b)
                return a, b, relative_pose(self.states[a], self.states[b])
        raise ConfigError(
            f"pose: too few frame pairs of one drive within pose.max_distance={pc.max_distance} m and "
            f"pose.max_turn={pc.max_turn} rad with odometry: check the bags' /odom"
        )

    def places(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame index [n], its odometry pose [n, 3]) for n frames of any drive with odometry."""
        known = torch.nonzero(self.known).squeeze(1)
        if len(known) == 0:
            raise ConfigError("pose: no frame has odometry: check the bags' /odom")
        i = known[torch.randint(0, len(known), (n,), generator=gen)]
        return i, self.states[i]

    def windows(self, n: int, h: int, k: int, gen: torch.Generator):
        """(history [n, k, A], the next h commands [n, h, A], pose after them [n, 3]) from random times t."""
        count = (self.len - k - h).clamp(min=0).double()
        if count.sum() == 0:
            raise ConfigError(f"pose: no drive has the {k + h + 1} frames a motion window of {h} steps needs")
        ep = torch.multinomial(count, n, replacement=True, generator=gen)
        t = self.start[ep] + k + (torch.rand(n, generator=gen) * count[ep]).long()
        hist = torch.stack([self.actions[t - k + i] for i in range(k)], 1)
        cmds = torch.stack([self.actions[t + i] for i in range(h)], 1)
        ok = self.known[t] & self.known[t + h]
        return hist[ok], cmds[ok], relative_pose(self.states[t[ok]], self.states[t[ok] + h])


def train_pair(net, drives: Drives, pc, yaw_scale: float, gen: torch.Generator, device, on_step) -> None:
    """R on pairs of one drive each: `pose.steps` Adam steps with a cosine schedule; `on_step(step, loss)`."""

    def batch():
        a, b, true = drives.pairs(pc.batch_size, pc, gen)
        return (drives.frames[a], drives.frames[b]), pose_to_vector(true, yaw_scale)

    _regress(net, pc.steps, batch, pc, device, "pair", on_step)


def train_place(net, drives: Drives, pc, yaw_scale: float, gen: torch.Generator, device, on_step) -> None:
    """L on single frames of every drive and their odometry pose: `pose.place_steps` Adam steps."""

    def batch():
        i, pose = drives.places(pc.batch_size, gen)
        return (drives.frames[i],), place_to_vector(pose, yaw_scale)

    _regress(net, pc.place_steps, batch, pc, device, "place", on_step)


def train_motion(mm, drives: Drives, pc, parts: RelativePoseConfig, gen: torch.Generator, device, on_step) -> None:
    """M on recorded command windows, h uniform in 1..H_m per step: `pose.motion_steps` Adam steps."""

    def batch():
        h = int(torch.randint(1, parts.horizon + 1, (1,), generator=gen))
        hist, cmds, true = drives.windows(pc.motion_batch_size, h, parts.history, gen)
        return (hist, cmds), pose_to_vector(true, parts.yaw_scale)

    _regress(mm, pc.motion_steps, batch, pc, device, "motion", on_step)


def _regress(module, steps: int, batch, pc, device, what: str, on_step) -> None:
    """Every part's fit: smooth-L1 between module(*inputs) and the regressed vector of the true pose,
    `batch()` → (inputs, target vectors [n, 4]), `steps` Adam steps (`fit_part`)."""

    def step_loss():
        inputs, target = batch()
        out = module(*(x.to(device) for x in inputs))
        return F.smooth_l1_loss(out, target.to(device), beta=pc.beta)

    fit_part(module, steps, pc.lr, step_loss, f"pose {what}", on_step)


def _errors(pred: torch.Tensor, true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Position error (m) and absolute wrapped heading error (rad) of poses [n, 3]."""
    d = relative_pose(pred, true)
    return d[:, :2].norm(dim=-1), d[:, 2].abs()


def _summary(xy: torch.Tensor, yaw: torch.Tensor) -> dict:
    return {
        "n": len(xy),
        "xy_median": round(float(xy.median()), 4),
        "xy_p90": round(float(xy.quantile(0.9)), 4),
        "yaw_median": round(float(yaw.median()), 4),
        "yaw_p90": round(float(yaw.quantile(0.9)), 4),
    }


@torch.no_grad()
def held_out_pairs(model, drives: Drives, pc, device, seed: int, n: int = 2000) -> dict:
    """R's placement of held-out pairs, and L's (L(b) ⊖ L(a)) when the model has a place net, on the same
    pairs: median / p90 position and heading error by how far the goal is."""
    gen = torch.Generator().manual_seed(seed)
    a, b, true = drives.pairs(n, pc, gen)
    c = model.cfg.relative_pose.yaw_scale
    placers = {"pair": lambda x, g: vector_to_pose(model.pose_net(x, g), c)}
    if model.place_net is not None:
        placers["place"] = lambda x, g: relative_pose(model.place(x), model.place(g))
    dist = true[:, :2].norm(dim=-1)
    out = {}
    for name, place in placers.items():
        pred = torch.cat(
            [
                place(drives.frames[a[i : i + 256]].to(device), drives.frames[b[i : i + 256]].to(device))
                for i in range(0, n, 256)
            ]
        ).cpu()
        xy, yaw = _errors(pred, true)
        out[name] = {}
        for lo, hi in zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]):
            m = (dist >= lo) & (dist < hi)
            if m.any():
                out[name][f"{lo:g}-{hi:g}m" if math.isfinite(hi) else f">={lo:g}m"] = _summary(xy[m], yaw[m])
        far = dist >= PLACE_FROM
        out[name]["far_xy_median"] = round(float(xy[far].median()), 4) if far.any() else None
    return out


def choose_placement(pairs: dict) -> tuple[bool, str]:
    """(keep L, why in one line) from `held_out_pairs`: L only when it places the held-out pairs at least
    `PLACE_FROM` apart better than R (median position error)."""
    if "place" not in pairs:
        return False, "goals placed by the pair net R (no place net trained: pose.place_steps=0)"
    r, l_ = pairs["pair"]["far_xy_median"], pairs["place"]["far_xy_median"]
    if r is None or l_ is None:
        return False, f"goals placed by the pair net R (no held-out pairs {PLACE_FROM} m or more apart to judge L by)"
    if l_ < r:
        return True, (
            f"goals placed by the place net L: held-out goals {PLACE_FROM} m or more away placed at median "
            f"{l_:.3f} m against R's {r:.3f} m (the drives' odometry shares one frame)"
        )
    return False, (
        f"goals placed by the pair net R: the place net L placed held-out goals {PLACE_FROM} m or more away at "
        f"median {l_:.3f} m against R's {r:.3f} m (does each drive's odometry start in its own frame?)"
    )


def without_place_net(model, device) -> torch.nn.Module:
    """The same model without its place net (relative_pose.place=false), every other tensor carried over."""
    cfg = dataclasses.replace(model.cfg, relative_pose=dataclasses.replace(model.cfg.relative_pose, place=False))
    out = type(model)(cfg).to(device)
    out.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("place_net.")})
    return out.eval()


def with_free_space(model, xy: torch.Tensor, resolution: float, device) -> torch.nn.Module:
    """The same model with the free-space map of the positions `xy` [N, 2] (the drives' odometry, the place
    net's frame), every other tensor carried over."""
    grid, origin, resolution = FreeSpace.grid_of(xy, resolution)
    rp = dataclasses.replace(model.cfg.relative_pose, free_space=list(grid.shape))
    out = with_new_part(model, "free_space.", {"relative_pose": rp}, 0, device)  # the map holds no weights
    out.free_space.set(grid, origin, resolution)
    return out.eval()


@torch.no_grad()
def held_out_motion(model, drives: Drives, device, seed: int, n: int = 2000) -> dict:
    """M on held-out drives: median / p90 position and heading error after h recorded commands."""
    rp = model.cfg.relative_pose
    out = {}
    for h in (h for h in MOTION_REPORT_H if h <= rp.horizon):
        hist, cmds, true = drives.windows(n, h, rp.history, torch.Generator().manual_seed(seed + h))
        if len(true):
            xy, yaw = _errors(model.motion(hist.to(device), cmds.to(device)).cpu(), true)
            out[f"h{h}"] = {"travel_median": round(float(true[:, :2].norm(dim=-1).median()), 4), **_summary(xy, yaw)}
    return out


def _line(name: str, report: dict) -> str:
    """One line: `name: key xy median/p90 m, yaw median/p90 rad | ...`."""
    parts = [
        f"{k} xy {v['xy_median']:.3f}/{v['xy_p90']:.3f} m yaw {v['yaw_median']:.3f}/{v['yaw_p90']:.3f} rad (n {v['n']})"
        for k, v in report.items()
        if isinstance(v, dict)
    ]
    return f"{name}: " + (" | ".join(parts) if parts else "no held-out drives")


def has_odometry(cache) -> bool:
    """Whether the bags' state is a planar pose (odometry or a pose topic)."""
    return cache.state is not None and tuple(cache.state_names or ()) == POSE_NAMES


def relative_pose_parts(cfg: TrainConfig, device: torch.device) -> dict:
    pc = cfg.pose
    src = find_model(cfg, pc.checkpoint, order=("goal", "refine", "fit"))
    base, meta = load_checkpoint(src, device)
    data = open_data(cfg, base.cfg.image_size, 2)
    if not has_odometry(data.cache):
        why = f"the bags have no odometry (state {data.cache.state_names or 'none'}; record /odom)"
        if pc.skip_without_odometry:
            log.info("pose: skipped: %s", why)
            return {"skipped": why, "source": src}
        raise ConfigError(f"{why}: the relative-pose parts learn from it (pose.skip_without_odometry=true skips)")
    try:
        parts = RelativePoseConfig(**dict(pc.parts), place=pc.place_steps > 0)
    except TypeError as e:
        raise ConfigError(f"pose.parts: {e}") from None
    try:
        model = with_new_part(base, PARTS, {"relative_pose": parts}, cfg.run.seed, device)
    except ValueError as e:
        raise ConfigError(f"pose.parts: {e}") from None
    if meta.get("action_low") is None or meta.get("action_high") is None:
        raise ConfigError(f"{src} has no action bounds: the motion model normalises commands by them")
    model.motion_model.action_low.copy_(torch.tensor(meta["action_low"], dtype=torch.float32))
    model.motion_model.action_high.copy_(torch.tensor(meta["action_high"], dtype=torch.float32))
    model.eval()
    frozen = train_only(model, PARTS)
    train = Drives.from_cache(data.cache, data.train_episodes)
    val = Drives.from_cache(data.cache, data.val_episodes) if len(data.val_episodes) else None
    run_dir = run_subdir(cfg, "pose")
    os.makedirs(run_dir, exist_ok=True)
    record(run_dir, cfg)
    gen = torch.Generator().manual_seed(cfg.run.seed)
    total = pc.steps + pc.motion_steps + pc.place_steps
    logger = RunLogger(run_dir, True, cfg.run.tensorboard, cfg.run.progress, total, 0, "pose")
    t0 = time.perf_counter()
    curve = {"pair": [], "motion": [], "place": []}
    every = cfg.run.log_every
    try:
        train_pair(
            model.pose_net,
            train,
            pc,
            parts.yaw_scale,
            gen,
            device,
            lambda step, loss: _log(logger, curve["pair"], "pair", step, pc.steps, loss, every),
        )
        pair_s = time.perf_counter() - t0
        train_motion(
            model.motion_model,
            train,
            pc,
            parts,
            gen,
            device,
            lambda step, loss: _log(logger, curve["motion"], "motion", step, pc.motion_steps, loss, every, pc.steps),
        )
        if model.place_net is not None:
            offset = pc.steps + pc.motion_steps
            train_place(
                model.place_net,
                train,
                pc,
                parts.yaw_scale,
                gen,
                device,
                lambda step, loss: _log(logger, curve["place"], "place", step, pc.place_steps, loss, every, offset),
            )
    finally:
        logger.close()
    train_s = time.perf_counter() - t0
    check_unchanged(model, frozen, "pose")  # the contract: only the relative-pose parts move
    held_out = {"pair": {}, "motion": {}}
    if val is not None:
        held_out = {
            **held_out_pairs(model, val, pc, device, cfg.run.seed + 1),
            "motion": held_out_motion(model, val, device, cfg.run.seed + 1),
        }
    for name in ("pair", "place", "motion"):
        if name in held_out:
            log.info("%s", _line(f"pose held-out {name}", held_out[name]))
    keep_place, placement = choose_placement(held_out)
    log.info("pose: %s", placement)
    if model.place_net is not None and not keep_place:
        model = without_place_net(model, device)
    free = ""
    if keep_place and pc.free_space > 0:
        model = with_free_space(
            model, torch.cat([d.states[:, :2] for d in (train, val) if d is not None]), pc.free_space, device
        )
        (rows, cols), res = model.free_space.grid.shape, float(model.free_space.resolution)
        free = f"free-space map {rows} x {cols} cells of {res:.3g} m, {int(model.free_space.grid.sum())} free"
        log.info("pose: %s", free)
    info = dict(meta.get("training") or {})
    info.update(
        subcommand="pose",
        source=os.path.abspath(src),
        config=to_dict(cfg),
        pose={"held_out": held_out, "placement": placement},
    )
    out_path = os.path.join(run_dir, "model.safetensors")
    save_derived(out_path, model, meta, info)
    return {
        "checkpoint": out_path,
        "source": src,
        "frames": int(len(train.frames)),
        "val_frames": 0 if val is None else int(len(val.frames)),
        "pair_seconds": round(pair_s, 2),
        "train_seconds": round(train_s, 2),
        "last_loss": {k: v[-1][1] if v else float("nan") for k, v in curve.items()},
        "held_out": held_out,
        "placement": placement,
        "place_net": keep_place,
        "free_space": free,
        "report": [_line(k, held_out[k]) for k in ("pair", "place", "motion") if k in held_out]
        + [placement]
        + ([free] if free else []),
    }


def _log(logger, curve: list, name: str, step: int, total: int, loss, every: int, offset: int = 0) -> None:
    logger.progress(1)
    if step % every == 0 or step == total:
        curve.append((step, float(loss.detach())))
        logger.scalars(offset + step, {f"loss/pose_{name}": curve[-1][1]})
        if step % (every * 10) == 0 or step == total:
            log.info("pose %s step %d/%d loss %.5f", name, step, total, curve[-1][1])
