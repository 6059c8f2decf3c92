"""Pure index arithmetic that turns one bag's time series into aligned episode segments.

Vectorised with `np.searchsorted`; the rules are documented in `training.data.topics`.
Input stamps are int64 nanoseconds; image stamps must be strictly increasing (the reader
drops the ones `increasing` does not keep, and reports them, before calling this).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Series:
    """Stamped values of one topic, sorted by stamp."""

    stamps: np.ndarray  # int64 [K]
    values: np.ndarray  # [K, ...]

    @classmethod
    def empty(cls, width: int = 0) -> Series:
        shape = (0, width) if width else (0,)
        return cls(np.zeros(0, np.int64), np.zeros(shape, np.float32))

    def sorted(self) -> Series:
        order = np.argsort(self.stamps, kind="stable")
        return Series(self.stamps[order], self.values[order])


@dataclass
class Segment:
    """A run of kept images [start, stop) (indices into the image arrays) with aligned data."""

    start: int
    stop: int
    actions: np.ndarray
    rewards: np.ndarray
    state: np.ndarray | None
    episode: int  # marker value, or -1 when the bag has no markers


@dataclass
class Alignment:
    segments: list[Segment]
    dropped_frames: Counter = field(default_factory=Counter)
    dropped_episodes: Counter = field(default_factory=Counter)
    held_age_ns: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.int64)
    )  # align="hold": frames with an action


STALE_HOLD = "held action older than max_hold_s"


def increasing(stamps: np.ndarray) -> np.ndarray:
    """Mask of a longest strictly increasing subsequence of `stamps`, so one out-of-order, duplicate or
    far-jumped stamp costs its own frame, not the frames after it. Of equally long ones the earliest frames
    win (a duplicate or a stamp behind its predecessor is the one dropped): it is built back to front."""
    s = np.asarray(stamps, np.int64)
    n = len(s)
    if n == 0 or np.all(np.diff(s) > 0):
        return np.ones(n, bool)
    tails: list[int] = []  # tails[k]: least last value of an increasing run of length k+1 (of -s reversed)
    tail_at: list[int] = []
    parent = np.full(n, -1, np.int64)
    for j, v in enumerate((-s[::-1]).tolist()):
        k = bisect_left(tails, v)
        parent[j] = tail_at[k - 1] if k else -1
        if k == len(tails):
            tails.append(v)
            tail_at.append(j)
        else:
            tails[k], tail_at[k] = v, j
    keep = np.zeros(n, bool)
    j = tail_at[-1]
    while j >= 0:
        keep[n - 1 - j] = True
        j = parent[j]
    return keep


def _segment_ids(starts: np.ndarray) -> np.ndarray:
    """Boolean 'starts a new run' -> run id per element."""
    return np.cumsum(starts) - 1


def align(
    img_stamps: np.ndarray,
    actions: Series,
    *,
    rewards: Series | None = None,
    state: Series | None = None,
    markers: Series | None = None,
    break_before: np.ndarray | None = None,
    poison: np.ndarray | None = None,
    split_gap_ns: int | None = None,
    mode: str = "hold",
    tolerance_ns: int = 0,
    max_hold_ns: int | None = None,
    min_len: int = 2,
) -> Alignment:
    """Align actions/rewards/state to image stamps and cut episodes.

    `break_before[i]`: a bad record was removed just before image i (start a new segment).
    `poison`: log times of unreadable non-image records; images whose interval holds one are dropped.
    """
    s = np.asarray(img_stamps, np.int64)
    n = len(s)
    out = Alignment([])
    if n == 0:
        return out
    if np.any(np.diff(s) <= 0):
        raise ValueError("align: image stamps must be strictly increasing")
    keep = np.ones(n, bool)

    # 1. Episodes: markers, then time gaps and removed records.
    if markers is not None and len(markers.stamps):
        mk = np.searchsorted(markers.stamps, s, side="right") - 1
        before = mk < 0
        if before.any():
            out.dropped_frames["before first episode marker"] += int(before.sum())
            keep &= ~before
        ep_lo = np.where(before, np.iinfo(np.int64).min, markers.stamps[np.maximum(mk, 0)])
        nxt = np.minimum(mk + 1, len(markers.stamps) - 1)
        ep_hi = np.where(mk + 1 < len(markers.stamps), markers.stamps[nxt], np.iinfo(np.int64).max)
        ep_val = np.where(before, -1, markers.values[np.maximum(mk, 0)]).astype(np.int64)
    else:
        mk = np.zeros(n, np.int64)
        ep_lo = np.full(n, np.iinfo(np.int64).min)
        ep_hi = np.full(n, np.iinfo(np.int64).max)
        ep_val = np.full(n, -1, np.int64)
    new = np.zeros(n, bool)
    new[0] = True
    new[1:] |= mk[1:] != mk[:-1]
    if split_gap_ns is not None:
        new[1:] |= np.diff(s) > split_gap_ns
    if break_before is not None:
        new |= np.asarray(break_before, bool)

    # 2. Each image's interval [s_i, b_i): up to the next image in its episode, else one median
    # frame interval (never past the episode's end marker).
    diffs = np.diff(s)
    med = int(np.median(diffs)) if len(diffs) else 1
    last = np.ones(n, bool)
    last[:-1] = new[1:]
    b = np.empty(n, np.int64)
    b[:-1] = s[1:]
    b[last] = s[last] + med
    b = np.minimum(b, ep_hi)

    # 3. Actions.
    a_st = actions.stamps
    if len(a_st) == 0:
        out.dropped_frames["no action"] += int(keep.sum())
        return out
    if mode == "hold":
        idx = np.searchsorted(a_st, b, side="left") - 1
        ok = idx >= 0
        ai = np.maximum(idx, 0)
        ok &= a_st[ai] >= ep_lo
        if max_hold_ns is not None:
            stale = keep & ok & (a_st[ai] < s - max_hold_ns)
            if stale.any():
                out.dropped_frames[STALE_HOLD] += int(stale.sum())
                keep &= ~stale
    elif mode == "nearest":
        j = np.searchsorted(a_st, s, side="left")
        lo, hi = np.clip(j - 1, 0, len(a_st) - 1), np.clip(j, 0, len(a_st) - 1)
        ai = np.where(np.abs(a_st[lo] - s) <= np.abs(a_st[hi] - s), lo, hi)
        ok = (np.abs(a_st[ai] - s) <= tolerance_ns) & (a_st[ai] >= ep_lo) & (a_st[ai] < ep_hi)
    else:
        raise ValueError(f"align: mode={mode!r}, expected 'hold' or 'nearest'")
    miss = keep & ~ok
    if miss.any():
        out.dropped_frames["no action" if mode == "hold" else "no action within tolerance"] += int(miss.sum())
    keep &= ok
    acts = actions.values[ai].astype(np.float32, copy=False)
    if mode == "hold":
        out.held_age_ns = np.maximum(s - a_st[ai], 0)[keep]

    if poison is not None and len(poison):
        p = np.sort(np.asarray(poison, np.int64))
        hit = np.searchsorted(p, b, side="left") > np.searchsorted(p, s, side="left")
        hit &= keep
        if hit.any():
            out.dropped_frames["unreadable action/reward/state/marker record"] += int(hit.sum())
            keep &= ~hit

    # 4. Rewards: sum over [s_i, b_i).
    if rewards is not None and len(rewards.stamps):
        c = np.concatenate([[0.0], np.cumsum(rewards.values.astype(np.float64))])
        r = c[np.searchsorted(rewards.stamps, b, "left")] - c[np.searchsorted(rewards.stamps, s, "left")]
        rew = r.astype(np.float32)
    else:
        rew = np.zeros(n, np.float32)

    # 5. State: latest at or before s_i, within the episode.
    st = None
    if state is not None and len(state.stamps):
        k = np.searchsorted(state.stamps, s, side="right") - 1
        have = (k >= 0) & (state.stamps[np.maximum(k, 0)] >= ep_lo)
        st = state.values[np.maximum(k, 0)].astype(np.float32, copy=True)
        st[~have] = np.nan

    # 6. Cut at dropped frames; drop short runs.
    starts = new | np.concatenate([[True], ~keep[:-1]])
    seg = _segment_ids(starts)
    kept_idx = np.flatnonzero(keep)
    if len(kept_idx) == 0:
        return out
    bounds = np.flatnonzero(np.concatenate([[True], seg[kept_idx][1:] != seg[kept_idx][:-1]]))
    bounds = np.append(bounds, len(kept_idx))
    for u, v in zip(bounds[:-1], bounds[1:]):
        i0, i1 = int(kept_idx[u]), int(kept_idx[v - 1]) + 1
        if i1 - i0 < min_len:
            out.dropped_episodes["shorter than min_episode_len"] += 1
            out.dropped_frames["episode shorter than min_episode_len"] += i1 - i0
            continue
        out.segments.append(
            Segment(i0, i1, acts[i0:i1], rew[i0:i1], None if st is None else st[i0:i1], int(ep_val[i0]))
        )
    return out
