"""A decoded on-disk cache of bags: frames resized to model resolution (cv2.INTER_AREA), uint8, in
memory-mapped .npy shards (one per bag), with actions, rewards, episode ids and true state (with its
names where the state's type gives them), and the data's time step (the median image interval).

Keyed by a hash of the bags' file names, sizes and mtimes (no content read: fast) and of the
preprocessing config, so a second run with the same inputs opens the existing cache at once.
Built in a temporary folder and renamed into place (atomic); described by a JSON index. No pickles.
Bags are decoded in parallel worker processes (`training.data.shard`) when there are several and
they are big enough.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moejepa_ros.codecs import GreyRanges

from .bag_reader import find_bags
from .episode import BagDataError, Episode, ReadSummary
from .shard import run_workers, write_shard
from .topics import TopicConfig

FORMAT_VERSION = 5
INDEX = "index.json"
PARALLEL_MIN_BYTES = 64 << 20  # below this (~5k frames at 64x64) a worker's start-up costs more than it saves


@dataclass(frozen=True)
class Preprocess:
    """What turns a decoded image into a cached frame."""

    image_size: tuple[int, int] = (64, 64)  # (H, W)
    interpolation: str = "area"
    ranges: GreyRanges = GreyRanges()  # depth / mono16 -> 0..255

    def to_dict(self) -> dict:
        return {"image_size": list(self.image_size), "interpolation": self.interpolation, **self.ranges.to_dict()}


def _bag_files(bag: Path) -> list[Path]:
    return sorted(f for f in bag.rglob("*") if f.is_file()) if bag.is_dir() else [bag]


def cache_key(bags: list[Path], topics: TopicConfig, pre: Preprocess, skip_bad: bool = False) -> str:
    """sha256 over (format, preprocessing, topic config, skip_bad, every bag file's name/size/mtime): a
    cache built while skipping bad data is never taken for one where bad data must stop the run."""
    files = []
    for bag in bags:
        for f in _bag_files(bag):
            st = f.stat()
            files.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "pre": pre.to_dict(),
            "topics": topics.to_dict(),
            "skip_bad": skip_bad,
            "files": files,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class DataCache:
    """An opened cache: per-shard memory-mapped frames plus small in-memory per-frame arrays.

    Global frame index = shard offset + index within the shard; an episode never spans shards.
    """

    def __init__(self, root: str | Path, hit: bool = True):
        self.root = Path(root)
        try:
            self.index = json.loads((self.root / INDEX).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"DataCache: cannot read {self.root / INDEX}: {e}") from None
        if self.index.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"DataCache {self.root}: format_version {self.index.get('format_version')} != {FORMAT_VERSION}"
            )
        self.hit = hit
        shards = self.index["shards"]
        self.frames = [np.load(self.root / s["files"]["frames"], mmap_mode="r") for s in shards]

        def cat(key: str, dt) -> np.ndarray:
            return np.concatenate([np.load(self.root / s["files"][key]) for s in shards]) if shards else np.zeros(0, dt)

        self.actions = cat("actions", np.float32).reshape(-1, self.index["action_dim"] or 0)
        self.rewards = cat("rewards", np.float32)
        self.stamps_ns = cat("stamps", np.int64)  # image stamps, ns
        self.state = (
            np.concatenate([np.load(self.root / s["files"]["state"]) for s in shards])
            if self.index["state_dim"]
            else None
        )
        self.shard_offsets = np.cumsum([0] + [s["n"] for s in shards]).astype(np.int64)
        eps = [(k, e) for k, s in enumerate(shards) for e in s["episodes"]]
        self.episode_shard = np.array([k for k, _ in eps], np.int64)
        self.episode_starts = np.array([self.shard_offsets[k] + e["start"] for k, e in eps], np.int64)
        self.episode_lengths = np.array([e["length"] for _, e in eps], np.int64)
        self.episode_sources = [shards[k]["bag"] for k, _ in eps]
        # Episodes tile each shard in order, so the per-frame episode id is a repeat.
        self.episode_ids = np.repeat(np.arange(len(eps), dtype=np.int64), self.episode_lengths)
        self.summary = ReadSummary.from_dict(self.index["summary"])
        self.bag_summaries = {b["bag"]: ReadSummary.from_dict(b["summary"]) for b in self.index["bags"]}

    @property
    def key(self) -> str:
        return self.index["key"]

    @property
    def num_frames(self) -> int:
        return int(self.shard_offsets[-1])

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.index["preprocess"]["image_size"])

    @property
    def ranges(self) -> GreyRanges:
        """The depth / mono16 ranges the frames were decoded with (the checkpoint keeps them)."""
        return GreyRanges.from_dict(self.index["preprocess"])

    @property
    def action_dim(self) -> int:
        return int(self.index["action_dim"] or 0)

    @property
    def state_dim(self) -> int | None:
        return self.index["state_dim"]

    @property
    def state_names(self) -> list[str] | None:
        """What the state's columns are (e.g. ["x", "y", "yaw"] from odometry); None when unnamed."""
        return self.index["state_names"]

    @property
    def time_step_s(self) -> float | None:
        """The median interval between consecutive images within episodes, in seconds (None: no pairs)."""
        return self.index["time_step_s"]

    def episode(self, i: int) -> Episode:
        """Episode `i` as arrays (frames copied out of the memmap)."""
        k, s, m = int(self.episode_shard[i]), int(self.episode_starts[i]), int(self.episode_lengths[i])
        loc = s - int(self.shard_offsets[k])
        return Episode(
            frames=np.array(self.frames[k][loc : loc + m]),
            actions=self.actions[s : s + m],
            rewards=self.rewards[s : s + m],
            state=None if self.state is None else self.state[s : s + m],
            stamps_ns=self.stamps_ns[s : s + m],
            source=self.episode_sources[i],
            index=i,
            state_names=None if self.state is None or self.state_names is None else tuple(self.state_names),
        )


def build_cache(
    sources,
    cache_dir: str | Path = "build/data_cache",
    topics: TopicConfig | None = None,
    image_size: int | tuple[int, int] = 64,
    *,
    skip_bad: bool = False,
    ranges: GreyRanges = GreyRanges(),
    workers: int | None = None,
    rebuild: bool = False,
) -> DataCache:
    """Open the cache for `sources` (bags/folders) under `cache_dir`, building it if absent.

    `workers=None`: up to one process per bag (at most the CPU count) when the bags total over 64 MB, else
    in-process. Returns a `DataCache` whose `.hit` says whether it was already there.
    """
    topics = topics or TopicConfig()
    hw = (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(v) for v in image_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"build_cache: image_size={image_size!r}, expected an int or (H, W) > 0")
    pre = Preprocess(hw, ranges=ranges)
    bags = find_bags(sources)
    key = cache_key(bags, topics, pre, skip_bad)
    cache_dir = Path(cache_dir)
    final = cache_dir / key
    if (final / INDEX).exists() and not rebuild:
        return DataCache(final, hit=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{key}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    t0 = time.perf_counter()
    try:
        jobs = [
            dict(
                bag=str(b),
                tmp=str(tmp),
                shard=k,
                topics=topics.to_dict(),
                skip_bad=skip_bad,
                image_size=list(hw),
                ranges=ranges.to_dict(),
            )
            for k, b in enumerate(bags)
        ]
        if workers is None:
            big = sum(f.stat().st_size for b in bags for f in _bag_files(b)) >= PARALLEL_MIN_BYTES
            workers = min(len(bags), os.cpu_count() or 1) if big else 1
        if workers > 1 and len(jobs) > 1:
            sizes = [sum(f.stat().st_size for f in _bag_files(b)) for b in bags]
            shards = run_workers(jobs, sizes, workers)
        else:
            shards = [write_shard(j) for j in jobs]
        index = _make_index(shards, tmp, key, pre, topics, skip_bad, bags)
        index["build_seconds"] = round(time.perf_counter() - t0, 3)
        (tmp / INDEX).write_text(json.dumps(index, indent=1))
        if rebuild and final.exists():
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:  # another builder won the race: theirs is equivalent
            if not (final / INDEX).exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DataCache(final, hit=False)


def _make_index(
    shards: list[dict], tmp: Path, key: str, pre: Preprocess, topics: TopicConfig, skip_bad: bool, bags: list[Path]
) -> dict:
    """Check the shards agree (action/state dims), drop disagreeing ones if allowed, and describe them."""
    summary = ReadSummary()
    per_bag = {s["bag"]: ReadSummary.from_dict(s["summary"]) for s in shards}
    kept = []
    a_dim = next((s["action_dim"] for s in shards if s["n"]), None)
    for s in shards:
        summary.merge(ReadSummary.from_dict(s["summary"]))
        if not s["n"]:
            continue
        if s["action_dim"] != a_dim:
            err = BagDataError(
                s["bag"],
                f"action dimension {s['action_dim']} differs from the other bags' {a_dim}",
                topics.action_topic,
            )
            if not skip_bad:
                raise err
            summary.skipped_files[s["bag"]] = err.problem
            summary.errors.append(str(err))
            bag = per_bag[s["bag"]]
            bag.skipped_files[s["bag"]] = err.problem
            bag.errors.append(str(err))
            bag.episodes = bag.frames = 0
            summary.episodes -= len(s["episodes"])
            summary.frames -= s["n"]
            for f in s["files"].values():
                (tmp / f).unlink(missing_ok=True)
            continue
        kept.append(s)
    kinds = {(s["state_dim"], tuple(s["state_names"] or ())) for s in kept}
    s_dim, s_names = kinds.pop() if len(kinds) == 1 else (None, ())
    if len(kinds) > 0 and s_dim is None:
        summary.notes.append(f"state differs between bags {sorted(map(str, kinds))}: no state cached")
    if not kept:
        raise BagDataError(bags[0] if len(bags) == 1 else f"{len(bags)} bags", f"no usable episodes ({summary})")
    for s in kept:
        if s_dim is None and "state" in s["files"]:
            (tmp / s["files"].pop("state")).unlink(missing_ok=True)
    return {
        "format_version": FORMAT_VERSION,
        "key": key,
        "preprocess": pre.to_dict(),
        "topics": topics.to_dict(),
        "action_dim": a_dim,
        "state_dim": s_dim,
        "state_names": list(s_names) if s_dim and s_names else None,
        "time_step_s": _time_step_s(kept, tmp),
        "num_frames": sum(s["n"] for s in kept),
        "num_episodes": sum(len(s["episodes"]) for s in kept),
        "shards": [{k: s[k] for k in ("bag", "n", "files", "episodes", "seconds")} for s in kept],
        "summary": summary.to_dict(),
        "bags": [{"bag": b, "summary": summ.to_dict()} for b, summ in per_bag.items()],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _time_step_s(shards: list[dict], tmp: Path) -> float | None:
    """The median interval between consecutive image stamps within episodes, over all episodes, in s."""
    gaps = []
    for s in shards:
        stamps = np.load(tmp / s["files"]["stamps"])
        gaps += [np.diff(stamps[e["start"] : e["start"] + e["length"]]) for e in s["episodes"]]
    gaps = np.concatenate(gaps) if gaps else np.zeros(0, np.int64)
    return round(float(np.median(gaps)) * 1e-9, 6) if len(gaps) else None
