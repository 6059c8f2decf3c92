"""The verdict: is a trained world model useful? One line from numbers measured on held-out episodes.

Checks (each failure names itself in the line, with what to try):

- **beats copy-last**: the open-loop latent error of the model's rollout, divided by that of
  predicting z_t for every later step (`evaluate.open_loop_of`), is below 1 at 1, 5 and 10 steps
  (only the horizons the held-out episodes are long enough for);
- **not collapsed**: the mean per-dimension std of z over held-out frames is at least
  `COLLAPSE_STD_FRACTION` (0.2) of the std the model's anti-collapse term aims at (0.1 for SimNorm,
  1.0 for LayerNorm latents: collapsed below 0.02 / 0.2);
- **moves**: mean ||z_{t+1} - z_t|| / mean ||z - mean z|| is at least `MIN_MOTION` (0.05): a latent
  whose step is under 5% of its spread kept what the actions do not change;
- **inverse dynamics** (when the fit logged `loss/idm_ratio`, IDM error over chance): at most
  `MAX_IDM_RATIO` (0.9); above it the latent barely tells which action was taken;
- **pose probe** (when the episodes carry a state): a closed-form ridge probe from z, fitted on
  training episodes and scored on the held-out ones, R^2 per state dim (yaw as (sin, cos) jointly);
  the mean R^2 over the pose dims (x, y, yaw) is at least `MIN_POSE_R2` (0.1). Low on purpose: a
  camera may see its pose only through local texture, so this flags a latent that holds next to
  nothing of where the robot is, not one a linear read-out finds hard.

It costs one encoder pass over ~256 held-out windows of k + 10 frames and one over as many training
stacks: seconds on a CPU.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .data.state import POSE_NAMES
from .evaluate import encode_windows, open_loop_of
from .logging_utils import log, read_metrics
from .probing import probe_r2, state_names

HORIZONS = (1, 5, 10)
WINDOWS = 256
COLLAPSE_STD_FRACTION = 0.2
MIN_MOTION = 0.05
MAX_IDM_RATIO = 0.9
MIN_POSE_R2 = 0.1
#: what to try, by the check that failed
ADVICE = {
    "copy_last": "longer training (train.steps) or `moejepa-train refine`",
    "collapse": "fit.idm_weight=1 (keeps what moves)",
    "motion": "fit.idm_weight=1 (keeps what moves), more varied driving",
    "idm": "fit.idm_weight=1 (keeps what moves)",
    "probe": "fit.reach_weight=1 (keeps where the robot is), more varied driving",
}


@dataclass
class Verdict:
    """The numbers of the checks, which failed (`reasons`) and `ok` (no check failed)."""

    horizons: list[int]
    open_loop_ratio: list[float]  # model / copy-last at `horizons`
    z_std: float
    std_target: float
    motion: float  # mean ||z_t+1 - z_t|| / mean ||z - mean z||
    idm_ratio: float | None
    probe_r2: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # check -> what it found
    windows: int = 0
    held_out: bool = True  # False: the data has no held-out episode, measured on training episodes

    @property
    def ok(self) -> bool:
        return not self.reasons

    def line(self) -> str:
        """One line: USEFUL / NOT USEFUL, the failed checks (or what passed), the numbers, what to try."""
        ratios = "/".join(f"{r:.2f}" for r in self.open_loop_ratio)
        steps = "/".join(str(h) for h in self.horizons)
        idm = "n/a" if self.idm_ratio is None else f"{self.idm_ratio:.2f}"
        nums = f"latent std {self.z_std:.3g}, moves {self.motion:.3g}/step, idm ratio {idm}"
        if self.probe_r2:
            nums += ", probe R2 " + " ".join(f"{k} {v:.2f}" for k, v in self.probe_r2.items())
        if not self.held_out:
            nums += " (no held-out episode: measured on training episodes)"
        if self.ok:
            return f"verdict: USEFUL - beats copy-last at {steps} steps ({ratios}x), {nums}"
        if "copy_last" not in self.reasons:
            nums = f"beats copy-last at {steps} steps ({ratios}x), {nums}"
        advice = list(dict.fromkeys(a for k in self.reasons for a in ADVICE[k].split(", ")))
        advice.append("another run.seed")
        return f"verdict: NOT USEFUL - {'; '.join(self.reasons.values())}; {nums}; try: {', '.join(advice)}"

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "line": self.line()}

    def write(self, path: str) -> str:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path


def run_idm_ratio(*run_dirs: str) -> float | None:
    """The mean of the last (up to 5) `loss/idm_ratio` values logged in the first of `run_dirs` that has
    them, or None (the fit ran without inverse dynamics)."""
    for d in run_dirs:
        vals = [r["loss/idm_ratio"] for r in read_metrics(d) if "loss/idm_ratio" in r][-5:]
        if vals:
            return float(np.mean(vals))
    return None


def judge_run(cfg, model, data, run_dir: str, idm_dirs: tuple[str, ...] = ()) -> Verdict:
    """The verdict at the end of a training command: judged on the held-out episodes, logged as one
    line and written to `<run_dir>/verdict.json`."""
    v = judge(model, data, WINDOWS, cfg.run.seed, run_idm_ratio(run_dir, *idm_dirs))
    v.write(os.path.join(run_dir, "verdict.json"))
    log.info("%s", v.line())
    return v


@torch.no_grad()
def latent_stats(z: torch.Tensor) -> tuple[float, float]:
    """(mean per-dim std of z, mean step / mean spread) for consecutive latents z [n, T, D]."""
    flat = z.reshape(-1, z.shape[-1])
    std = float(flat.std(0).mean())
    spread = float((flat - flat.mean(0)).norm(dim=-1).mean())
    step = float((z[:, 1:] - z[:, :-1]).norm(dim=-1).mean()) if z.shape[1] > 1 else 0.0
    return std, step / max(spread, 1e-12)


@torch.no_grad()
def judge(model, data, windows: int = WINDOWS, seed: int = 0, idm_ratio: float | None = None) -> Verdict:
    """Measure the checks of the module docstring on `data`'s held-out episodes and judge."""
    k = model.cfg.frame_stack
    if idm_ratio is not None and not math.isfinite(idm_ratio):
        idm_ratio = None
    held_out = len(data.val_episodes) > 0
    eps = data.val_episodes if held_out else data.train_episodes
    longest = int(data.cache.episode_lengths[eps].max())
    H = min(max(HORIZONS), longest - k)
    if H < 1:
        raise ValueError(f"verdict: the episodes have at most {longest} frames, < frame_stack + 1 = {k + 1}")
    z, actions, state = encode_windows(model, data, H, windows, seed)
    ol = open_loop_of(model, z, actions)
    horizons = [h for h in HORIZONS if h <= H]
    ratio = [round(ol["ratio"][h - 1], 4) for h in horizons]
    std, motion = latent_stats(z)
    target = model.cfg.losses.std_target(model.cfg.latent_norm)
    r2s: dict[str, float] = {}
    if state is not None:
        zf, _, sf = encode_windows(model, data, 0, 4 * windows, seed + 1, val=False)  # the probe's fit set
        zt, st = z.reshape(-1, z.shape[-1]), state.reshape(-1, state.shape[-1])
        r2s = probe_r2(zf[:, 0], sf[:, 0], zt, st, state_names(data.cache))
    reasons = {}
    worse = [(h, r) for h, r in zip(horizons, ratio) if not r < 1.0]
    if worse:
        reasons["copy_last"] = "worse than copy-last at " + ", ".join(f"{h}" for h, _ in worse) + " steps ("
        reasons["copy_last"] += ", ".join(f"{r:.2f}x" for _, r in worse) + ")"
    if not std >= COLLAPSE_STD_FRACTION * target:
        reasons["collapse"] = f"latent collapsed (z_std {std:.3g} < {COLLAPSE_STD_FRACTION * target:.3g})"
    if not motion >= MIN_MOTION:
        reasons["motion"] = f"latent barely moves ({motion:.3f}/step of its spread < {MIN_MOTION})"
    if idm_ratio is not None and not idm_ratio <= MAX_IDM_RATIO:
        reasons["idm"] = f"actions barely readable from the latent (idm ratio {idm_ratio:.2f} > {MAX_IDM_RATIO})"
    pose = [v for n, v in r2s.items() if n in POSE_NAMES]
    if pose and not float(np.mean(pose)) >= MIN_POSE_R2:
        reasons["probe"] = f"pose not in the latent (probe R2 {float(np.mean(pose)):.2f} < {MIN_POSE_R2})"
    return Verdict(
        horizons=horizons,
        open_loop_ratio=ratio,
        z_std=float(f"{std:.4g}"),
        std_target=target,
        motion=round(motion, 4),
        idm_ratio=None if idm_ratio is None else round(idm_ratio, 4),
        probe_r2=r2s,
        reasons=reasons,
        windows=int(windows),
        held_out=held_out,
    )
