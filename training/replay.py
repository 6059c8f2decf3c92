"""`EpisodeReplay`: the online MBRL loop's replay store, in memory, one `.npz` file per finished episode.

Episodes are appended as they finish (frames are kept as uint8, never re-decoded), so the loop samples
from everything collected so far at no per-round cost. An episode holds `frames[T+1, S, S, 3]` (the
observation before each action and the last one), `actions[T, A]` and `rewards[T]`. A sample is a window
of `frame_stack - 1 + horizon + 1` frames: the stacks at steps t..t+horizon, the `horizon` actions and
rewards taken from them; an episode's first frame is repeated before it, as the control-side frame stack
does at an episode start. Frames are shifted at random by up to `augment_shift` pixels with edge
replication, one shift per window (DrQ's random shift, Kostrikov et al. 2021). With `augment_rotate` > 0 each
window is first turned about the image centre by one angle drawn from [-augment_rotate, augment_rotate] degrees:
a symmetry of a task only where its dynamics, actions and reward do not change when the whole scene turns about
the camera's axis (reacher: a planar arm, no gravity in its plane, its shoulder at the image centre), never of one
with gravity in the image (cartpole).

With `priority_alpha` > 0 windows are drawn by priority (prioritized experience replay, Schaul et al. 2016,
as TD-MPC samples its replay): P(i) = p_i^alpha / sum_j p_j^alpha, a new window gets the largest priority
so far, the learner sets p_i from its TD errors (`update_priorities`), and each sample carries its
importance weight (N P(i))^-beta / max, with its window `index`.
"""

from __future__ import annotations

import os

import numpy as np
import torch


def episode_path(root: str, i: int) -> str:
    """Where a replay under `root` keeps episode `i` (frames, actions, rewards; `np.load`-able)."""
    return os.path.join(root, f"episode_{i:05d}.npz")


def write_episode(root: str, i: int, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
    """Write episode `i` under `root` through a temporary file and a rename (a kill leaves no half file)."""
    os.makedirs(root, exist_ok=True)
    tmp = episode_path(root, i) + ".tmp.npz"
    np.savez(tmp, frames=frames, actions=actions, rewards=rewards)
    os.replace(tmp, episode_path(root, i))


class EpisodeReplay:
    """Finished episodes (in memory and under `root`), sampled as `WorldModel.loss`-shaped windows."""

    def __init__(
        self,
        root: str,
        frame_stack: int,
        horizon: int,
        augment_shift: int = 0,
        priority_alpha: float = 0.0,
        priority_beta: float = 0.4,
        augment_rotate: float = 0.0,
    ):
        if horizon < 1 or frame_stack < 1 or augment_shift < 0:
            raise ValueError(
                f"EpisodeReplay: horizon={horizon}, frame_stack={frame_stack} must be >= 1 and "
                f"augment_shift={augment_shift} >= 0"
            )
        if not 0 <= augment_rotate <= 180:
            raise ValueError(f"EpisodeReplay: augment_rotate={augment_rotate} must be in [0, 180] degrees")
        if priority_alpha < 0 or not 0 <= priority_beta <= 1:
            raise ValueError(
                f"EpisodeReplay: priority_alpha={priority_alpha} must be >= 0 and priority_beta={priority_beta} "
                "in [0, 1]"
            )
        self.root, self.k, self.horizon, self.shift = root, int(frame_stack), int(horizon), int(augment_shift)
        self.alpha, self.beta = float(priority_alpha), float(priority_beta)
        self.rotate = float(augment_rotate)
        self.priorities = np.zeros(0, np.float64)  # per window, as `_starts`
        self.frames: list[np.ndarray] = []  # per episode, padded with k-1 copies of its first frame
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self._starts = np.zeros((0, 2), np.int64)  # (episode, first step) of every window

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def steps(self) -> int:
        """Environment steps (transitions) held."""
        return int(sum(len(r) for r in self.rewards))

    def _path(self, i: int) -> str:
        return episode_path(self.root, i)

    def add(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray, save: bool = True) -> None:
        """Append one finished episode (and write it, unless it came from disk)."""
        frames, actions = np.asarray(frames, np.uint8), np.asarray(actions, np.float32)
        rewards = np.asarray(rewards, np.float32)
        T = len(rewards)
        if frames.ndim != 4 or len(frames) != T + 1 or len(actions) != T:
            raise ValueError(
                f"EpisodeReplay.add: need frames [T+1, S, S, 3], actions [T, A], rewards [T]; got "
                f"{frames.shape}, {actions.shape}, {rewards.shape}"
            )
        if save:
            write_episode(self.root, len(self), frames, actions, rewards)
        i = len(self)
        self.frames.append(np.concatenate([np.repeat(frames[:1], self.k - 1, 0), frames], 0))
        self.actions.append(actions)
        self.rewards.append(rewards)
        n = T - self.horizon + 1
        if n > 0:
            new = np.stack([np.full(n, i), np.arange(n)], 1)
            self._starts = np.concatenate([self._starts, new], 0)
            top = float(self.priorities.max()) if len(self.priorities) else 1.0
            self.priorities = np.concatenate([self.priorities, np.full(n, top)])

    def load(self, episodes: int) -> None:
        """Read the first `episodes` files of `root` (a resumed run); later ones (a killed episode's) are removed."""
        for i in range(episodes):
            with np.load(self._path(i)) as d:
                self.add(d["frames"], d["actions"], d["rewards"], save=False)
        i = episodes
        while os.path.isfile(self._path(i)):
            os.remove(self._path(i))
            i += 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """frames [B, k-1+H+1, S, S, 3] uint8, actions [B, k-1+H+1, A], rewards [B, k-1+H+1] (the model's window:
        action and reward j belong to frame j, so the last frame's slots are padding)."""
        if not len(self._starts):
            raise ValueError(f"EpisodeReplay.sample: no episode is longer than horizon={self.horizon} steps")
        n = len(self._starts)
        weight = None
        if self.alpha > 0:
            p = self.priorities**self.alpha
            p /= p.sum()
            index = rng.choice(n, batch_size, p=p)
            weight = (n * p[index]) ** -self.beta
            weight /= weight.max()
        else:
            index = rng.integers(0, n, batch_size)
        pick = self._starts[index]
        T, k, H = self.k + self.horizon, self.k, self.horizon
        A = self.actions[0].shape[1]
        S = self.frames[0].shape[1]
        frames = np.empty((batch_size, T, S, S, 3), np.uint8)
        actions = np.zeros((batch_size, T, A), np.float32)
        rewards = np.zeros((batch_size, T), np.float32)
        for b, (e, t) in enumerate(pick.tolist()):
            frames[b] = self.frames[e][t : t + T]
            actions[b, k - 1 : k - 1 + H] = self.actions[e][t : t + H]
            rewards[b, k - 1 : k - 1 + H] = self.rewards[e][t : t + H]
        if self.rotate:
            frames = random_rotate(frames, self.rotate, rng)
        if self.shift:
            frames = random_shift(frames, self.shift, rng)
        batch = {
            "frames": torch.from_numpy(frames),
            "actions": torch.from_numpy(actions),
            "rewards": torch.from_numpy(rewards),
        }
        if weight is not None:
            batch.update(index=torch.from_numpy(index), weight=torch.from_numpy(weight.astype(np.float32)))
        return batch

    def update_priorities(self, index, priority) -> None:
        """Set the sampled windows' priorities (the learner's TD errors), at least 1e-6 so every window can be drawn."""
        p = np.asarray(priority, np.float64).reshape(-1)
        if not np.all(np.isfinite(p)):
            raise ValueError("EpisodeReplay.update_priorities: priorities must be finite")
        self.priorities[np.asarray(index, np.int64).reshape(-1)] = np.maximum(p, 1e-6)


def random_rotate(frames: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """frames [B, T, S, S, C] turned about the image centre by one angle per window, uniform in [-degrees, degrees]
    (bilinear, edges replicated). One warp per frame: the same pixels as one warp of a window's
    frames stacked as T x C channels, 1.6x faster (OpenCV's path for more than 4 channels is slow;
    bench/micro/bench_td_update.py `sample_turned`)."""
    import cv2

    B, T, S, _, C = frames.shape
    frames, out = np.ascontiguousarray(frames), np.empty_like(frames)
    centre = ((S - 1) / 2, (S - 1) / 2)
    for b, angle in enumerate(rng.uniform(-degrees, degrees, B).tolist()):
        turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
        for t in range(T):
            out[b, t] = cv2.warpAffine(
                frames[b, t], turn, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
    return out


def random_shift(frames: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """frames [B, ..., S, S, C] shifted by up to `pad` pixels each way (one offset per window), edges replicated."""
    B, S = frames.shape[0], frames.shape[-2]
    padded = np.pad(frames, [(0, 0)] * (frames.ndim - 3) + [(pad, pad), (pad, pad), (0, 0)], mode="edge")
    off = rng.integers(0, 2 * pad + 1, size=(B, 2))
    return np.stack([padded[b, ..., y : y + S, x : x + S, :] for b, (y, x) in enumerate(off.tolist())])
