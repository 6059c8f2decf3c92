"""Window sources the trainer can consume, and a small in-memory one (tests, replay, probes).

A window source is an iterator of window dicts (docs/interfaces.md) with JSON-able
`state_dict()` / `load_state_dict()` describing its position, so training resumes exactly.
`training.data.sampler.WindowSampler` is the on-disk one; `ArrayWindows` holds episodes in RAM.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Protocol, Sequence

import numpy as np
import torch


class WindowSource(Protocol):
    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]: ...
    def __next__(self) -> Dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class ArrayWindows:
    """Random windows of length `window` from in-memory episodes; position = (seed, draws).

    `episodes` is a list of dicts with `frames` uint8 [T,H,W,3], `actions` [T,A], `rewards` [T]
    and optionally `state` [T,S]. Each batch is drawn from a numpy Generator re-seeded from
    (seed, batch index), so the state is two integers and resuming is exact.
    """

    def __init__(self, episodes: Sequence[dict], window: int, batch_size: int, seed: int = 0,
                 augment_shift: int = 0):
        self.window, self.batch_size, self.seed = int(window), int(batch_size), int(seed)
        self.augment_shift = int(augment_shift)
        self.episodes: List[dict] = []
        self.starts: List[np.ndarray] = []
        self.draws = 0
        for ep in episodes:
            self.add_episode(ep)

    def add_episode(self, ep: dict) -> None:
        """Append an episode (replay growth in Stage 3); too-short episodes are ignored."""
        T = len(ep["frames"])
        for k in ("actions", "rewards") + (("state",) if ep.get("state") is not None else ()):
            if len(ep[k]) != T:
                raise ValueError(f"ArrayWindows: episode {k} has {len(ep[k])} rows, frames has {T}")
        if T >= self.window:
            self.episodes.append(ep)

    @property
    def num_windows(self) -> int:
        return sum(len(e["frames"]) - self.window + 1 for e in self.episodes)

    def __iter__(self) -> "ArrayWindows":
        return self

    def __next__(self) -> Dict[str, torch.Tensor]:
        return self.sample()

    def sample(self) -> Dict[str, torch.Tensor]:
        """One batch of windows (the same protocol as `training.data.sampler.WindowSampler`)."""
        if not self.episodes:
            raise ValueError(f"ArrayWindows: no episode is at least window={self.window} steps long")
        rng = np.random.default_rng([self.seed, self.draws])
        self.draws += 1
        lens = np.array([len(e["frames"]) - self.window + 1 for e in self.episodes], np.float64)
        eps = rng.choice(len(self.episodes), size=self.batch_size, p=lens / lens.sum())
        out: Dict[str, list] = {"frames": [], "actions": [], "rewards": []}
        has_state = all(e.get("state") is not None for e in self.episodes)
        if has_state:
            out["state"] = []
        for i in eps:
            e = self.episodes[i]
            t = int(rng.integers(0, len(e["frames"]) - self.window + 1))
            sl = slice(t, t + self.window)
            fr = np.asarray(e["frames"][sl])
            if self.augment_shift:
                fr = shift_augment(fr, self.augment_shift, rng)
            out["frames"].append(fr)
            out["actions"].append(np.asarray(e["actions"][sl], np.float32))
            out["rewards"].append(np.asarray(e["rewards"][sl], np.float32))
            if has_state:
                out["state"].append(np.asarray(e["state"][sl], np.float32))
        return {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}

    def state_dict(self) -> dict:
        return {"seed": self.seed, "draws": self.draws, "episodes": len(self.episodes)}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.draws = int(state["seed"]), int(state["draws"])


def shift_augment(frames: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """DrQ-style random shift: replicate-pad by `pad` px and crop back, same shift for the window."""
    T, H, W, C = frames.shape
    p = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * pad + 1, size=2)
    return p[:, dy:dy + H, dx:dx + W]


def episodes_from_data(eps) -> List[dict]:
    """`training.data` Episode objects (or dicts) -> the dict form ArrayWindows takes."""
    out = []
    for e in eps:
        if isinstance(e, dict):
            out.append(e)
        else:
            st = getattr(e, "state", None)
            out.append({"frames": e.frames, "actions": e.actions, "rewards": e.rewards,
                        "state": st})
    return out


def synthetic_episodes(n: int = 4, length: int = 24, size: int = 64, action_dim: int = 2,
                       seed: int = 0, state: bool = True) -> List[dict]:
    """Tiny moving-dot episodes (state = dot position) for tests and smoke runs without a simulator."""
    rng = np.random.default_rng(seed)
    eps = []
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(n):
        pos = rng.uniform(8, size - 8, size=2)
        frames, acts, states = [], [], []
        for _t in range(length):
            a = rng.uniform(-1, 1, size=action_dim).astype(np.float32)
            img = np.zeros((size, size, 3), np.uint8)
            img[..., 0] = (255 * np.exp(-((xx - pos[0]) ** 2 + (yy - pos[1]) ** 2) / 8.0)).astype(np.uint8)
            frames.append(img)
            acts.append(a)
            states.append(pos.astype(np.float32).copy())
            pos = np.clip(pos + 2.0 * a[:2], 4, size - 4)
        eps.append({"frames": np.stack(frames), "actions": np.stack(acts),
                    "rewards": -np.linalg.norm(np.stack(states) - size / 2, axis=1).astype(np.float32) / size,
                    "state": np.stack(states) if state else None})
    return eps
