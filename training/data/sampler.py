"""`WindowSampler`: random training windows (docs/interfaces.md window format) from a `DataCache`.

Every window of T consecutive frames lies inside one episode. Sampling is uniform over all valid
window starts, with replacement, by vectorised index arithmetic on the memory-mapped shards.
Augmentation is DrQ's random shift (Kostrikov et al. 2020): replicate-pad by `augment_shift`
pixels and crop back at a random offset -- one offset per window, so motion between its frames
is untouched. Implemented as one memmap slice per window plus edge replication (equal to pad +
crop, without building the padded copy).
Deterministic under a seed; `state_dict()` (plain JSON-able data) resumes the exact sequence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .cache import DataCache

if TYPE_CHECKING:
    import torch


class WindowSampler:
    """Draws `batch_size` windows of `window` steps: dict(frames uint8 [B,T,H,W,3],
    actions float32 [B,T,A], rewards float32 [B,T], state float32 [B,T,S] if cached)."""

    def __init__(
        self,
        cache: DataCache,
        window: int,
        batch_size: int,
        seed: int = 0,
        augment_shift: int = 4,
        episodes=None,
        with_state: bool = True,
        far: int = 0,
        far_from: int = 0,
    ):
        if int(window) < 1 or int(batch_size) < 1:
            raise ValueError(f"WindowSampler: window={window} and batch_size={batch_size} must be >= 1")
        if int(augment_shift) < 0:
            raise ValueError(f"WindowSampler: augment_shift={augment_shift} must be >= 0")
        if int(augment_shift) >= min(cache.image_size):
            raise ValueError(
                f"WindowSampler: augment_shift={augment_shift} must be < the image size {cache.image_size}"
            )
        self.cache, self.window, self.batch_size = cache, int(window), int(batch_size)
        self.seed, self.augment_shift = int(seed), int(augment_shift)
        eps = np.arange(cache.num_episodes) if episodes is None else np.asarray(episodes, np.int64)
        if len(eps) and (eps.min() < 0 or eps.max() >= cache.num_episodes):
            raise ValueError(f"WindowSampler: episodes out of range 0..{cache.num_episodes - 1}")
        self.episodes = eps
        lengths = cache.episode_lengths[eps]
        counts = np.maximum(lengths - self.window + 1, 0)
        if counts.sum() == 0:
            raise ValueError(
                f"WindowSampler: no episode has >= window={window} frames "
                f"(longest {int(lengths.max()) if len(lengths) else 0}) in {cache.root}"
            )
        # All valid window starts, as global frame indices, plus the shard each lives in.
        ep_of = np.repeat(np.arange(len(eps)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        self.starts = cache.episode_starts[eps][ep_of] + offset
        self.start_shard = cache.episode_shard[eps][ep_of]
        # `far` > 0: each window also brings one frame 0..far steps after its frame `far_from`, in the
        # same episode (clipped at its end): batch["far_frames"] [B,H,W,3], batch["far_steps"] [B]
        if int(far) < 0 or not 0 <= int(far_from) < self.window:
            raise ValueError(f"WindowSampler: far={far} must be >= 0 and far_from={far_from} in [0, {self.window})")
        self.far, self.far_from = int(far), int(far_from)
        self.start_last = (cache.episode_starts[eps] + lengths - 1)[ep_of]
        self.with_state = bool(with_state) and cache.state is not None
        self._arange = np.arange(self.window)
        self.reset()

    def __len__(self) -> int:
        """Number of distinct windows."""
        return len(self.starts)

    def reset(self) -> None:
        self.batches = 0

    def state_dict(self) -> dict:
        """Plain JSON-able resume point. Batch k is drawn from a generator seeded by (seed, k), so
        the position is the whole RNG state."""
        return {
            "seed": self.seed,
            "batches": self.batches,
            "num_windows": len(self.starts),
            "window": self.window,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, d: dict) -> None:
        for k in ("num_windows", "window", "batch_size"):
            have = len(self.starts) if k == "num_windows" else getattr(self, k)
            if d.get(k, have) != have:
                raise ValueError(f"WindowSampler.load_state_dict: {k}={d[k]} but this sampler has {have}")
        self.seed, self.batches = int(d["seed"]), int(d["batches"])

    def sample_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (global frame indices [B,T], shard per window [B], shift offsets [B,2] in 0..2*pad)."""
        rng = np.random.default_rng([self.seed, self.batches])
        pick = rng.integers(0, len(self.starts), size=self.batch_size)
        idx = self.starts[pick][:, None] + self._arange
        shift = rng.integers(0, 2 * self.augment_shift + 1, size=(self.batch_size, 2))
        self.batches += 1
        self._pick, self._last_idx = pick, idx
        return idx, self.start_shard[pick], shift

    def gather_frames(self, idx: np.ndarray, shard: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Frames [B,T,H,W,3] for the windows, shifted by `shift - pad` with edge replication.

        A window is T consecutive rows of one shard, so each is one slice of the memmap (no fancy
        indexing): copy the part of the shifted crop that lies inside the image, then replicate
        the edge rows/columns into the rest -- equal to replicate-pad + crop, at memcpy speed.
        """
        c, (h, w), pad = self.cache, self.cache.image_size, self.augment_shift
        out = np.empty((len(idx), self.window, h, w, 3), np.uint8)
        first = idx[:, 0] - c.shard_offsets[shard]
        d = shift.astype(np.int64) - pad  # [B, 2] source offset (dy, dx)
        y0, y1 = np.maximum(0, -d[:, 0]), np.minimum(h, h - d[:, 0])
        x0, x1 = np.maximum(0, -d[:, 1]), np.minimum(w, w - d[:, 1])
        T = self.window
        for i, (k, f, dy, dx, a0, a1, b0, b1) in enumerate(
            zip(
                shard.tolist(),
                first.tolist(),
                d[:, 0].tolist(),
                d[:, 1].tolist(),
                y0.tolist(),
                y1.tolist(),
                x0.tolist(),
                x1.tolist(),
            )
        ):
            o = out[i]
            o[:, a0:a1, b0:b1] = c.frames[k][f : f + T, a0 + dy : a1 + dy, b0 + dx : b1 + dx]
            if b0 > 0:
                o[:, a0:a1, :b0] = o[:, a0:a1, b0 : b0 + 1]
            if b1 < w:
                o[:, a0:a1, b1:] = o[:, a0:a1, b1 - 1 : b1]
            if a0 > 0:
                o[:, :a0] = o[:, a0 : a0 + 1]
            if a1 < h:
                o[:, a1:] = o[:, a1 - 1 : a1]
        return out

    def sample(self) -> dict[str, torch.Tensor]:
        import torch  # here, not at module level: spawned data workers need not load torch

        idx, shard, shift = self.sample_indices()
        c = self.cache
        batch = {
            "frames": torch.from_numpy(self.gather_frames(idx, shard, shift)),
            "actions": torch.from_numpy(c.actions[idx]),
            "rewards": torch.from_numpy(c.rewards[idx]),
        }
        if self.far:
            batch.update(self._far(idx, shard))
        if self.with_state:
            batch["state"] = torch.from_numpy(c.state[idx])
        return batch

    def _far(self, idx: np.ndarray, shard: np.ndarray) -> dict:
        import torch

        rng = np.random.default_rng([self.seed, self.batches, 1])  # its own stream: windows are unchanged
        origin = idx[:, self.far_from]
        last = self.start_last[self._pick]
        f = np.minimum(origin + rng.integers(0, self.far + 1, size=len(idx)), last)
        local = f - self.cache.shard_offsets[shard]
        frames = np.stack([self.cache.frames[k][i] for k, i in zip(shard.tolist(), local.tolist(), strict=True)])
        return {"far_frames": torch.from_numpy(frames), "far_steps": torch.from_numpy((f - origin).astype(np.float32))}

    def __iter__(self) -> WindowSampler:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return self.sample()
