"""What the bag reader hands on: aligned `Episode`s, a `ReadSummary` of what it kept and dropped,
and `BagDataError`, the one error bad bag input raises (it names the file, topic and record)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class BagDataError(ValueError):
    """Bad bag input; the message names the file, and where known the topic and record index."""

    def __init__(self, path: str | Path, problem: str, topic: str | None = None, index: int | None = None):
        self.path, self.problem, self.topic, self.index = str(path), problem, topic, index
        where = f"{self.path}"
        if topic is not None:
            where += f", topic {topic}"
        if index is not None:
            where += f", message #{index}"
        super().__init__(f"{where}: {problem}")

    @property
    def reason(self) -> str:
        """A short, countable reason key (the problem's first clause)."""
        return self.problem.split(":")[0].split(" (")[0]


@dataclass
class Episode:
    """One aligned episode: `actions[t]` is the action applied after `frames[t]` and
    `rewards[t]` the reward received for it (docs/interfaces.md, window format)."""

    frames: np.ndarray  # uint8 [T, H, W, 3]
    actions: np.ndarray  # float32 [T, A]
    rewards: np.ndarray  # float32 [T]
    state: np.ndarray | None  # float32 [T, S] (NaN rows where no state was seen) or None
    stamps_ns: np.ndarray  # int64 [T], the image stamps
    source: str  # the bag file or folder it came from
    index: int = -1  # episode marker value, or the running number within the source
    state_names: tuple[str, ...] | None = None  # what the state's columns are (e.g. x, y, yaw), if known

    def __post_init__(self):
        t = len(self.frames)
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"Episode({self.source}): frames must be uint8 [T,H,W,3], got {self.frames.dtype} {self.frames.shape}"
            )
        for name in ("actions", "rewards", "stamps_ns") + (("state",) if self.state is not None else ()):
            if len(getattr(self, name)) != t:
                raise ValueError(f"Episode({self.source}): {name} has {len(getattr(self, name))} rows, frames has {t}")

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class ReadSummary:
    """What a read kept and what it dropped, and why (counts keyed by reason)."""

    files: list[str] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0
    skipped_files: dict[str, str] = field(default_factory=dict)  # file -> reason
    dropped_episodes: Counter = field(default_factory=Counter)  # reason -> count
    dropped_frames: Counter = field(default_factory=Counter)  # reason -> count
    errors: list[str] = field(default_factory=list)  # full messages of every skipped problem
    notes: list[str] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # file -> where reading ended early, and why
    skipped_topics: dict[str, str] = field(default_factory=dict)  # topic -> why its messages were not read
    clocks: dict[str, dict] = field(default_factory=dict)  # bag -> clock checks (training.data.clocks.choose)

    def merge(self, other: ReadSummary) -> ReadSummary:
        self.files += other.files
        self.episodes += other.episodes
        self.frames += other.frames
        self.skipped_files.update(other.skipped_files)
        self.dropped_episodes.update(other.dropped_episodes)
        self.dropped_frames.update(other.dropped_frames)
        self.errors += other.errors
        self.notes += other.notes
        self.stopped.update(other.stopped)
        self.skipped_topics.update(other.skipped_topics)
        self.clocks.update(other.clocks)
        return self

    def to_dict(self) -> dict:
        return {
            "files": list(self.files),
            "episodes": self.episodes,
            "frames": self.frames,
            "skipped_files": dict(self.skipped_files),
            "dropped_episodes": dict(self.dropped_episodes),
            "dropped_frames": dict(self.dropped_frames),
            "errors": list(self.errors),
            "notes": list(self.notes),
            "stopped": dict(self.stopped),
            "skipped_topics": dict(self.skipped_topics),
            "clocks": dict(self.clocks),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ReadSummary:
        return cls(
            files=list(d["files"]),
            episodes=int(d["episodes"]),
            frames=int(d["frames"]),
            skipped_files=dict(d["skipped_files"]),
            dropped_episodes=Counter(d["dropped_episodes"]),
            dropped_frames=Counter(d["dropped_frames"]),
            errors=list(d["errors"]),
            notes=list(d["notes"]),
            stopped=dict(d["stopped"]),
            skipped_topics=dict(d["skipped_topics"]),
            clocks=dict(d["clocks"]),
        )

    def __str__(self) -> str:
        s = f"{self.episodes} episodes, {self.frames} frames from {len(self.files)} bag(s)"
        if self.skipped_files:
            s += f"; skipped {len(self.skipped_files)} bag(s)"
        if self.dropped_episodes:
            s += f"; dropped episodes {dict(self.dropped_episodes)}"
        if self.dropped_frames:
            s += f"; dropped frames {dict(self.dropped_frames)}"
        if self.stopped:
            s += f"; kept the readable prefix of {len(self.stopped)} damaged file(s)"
        if self.skipped_topics:
            s += f"; skipped topics {sorted(self.skipped_topics)}"
        if warned := [b for b, c in self.clocks.items() if c["warnings"]]:
            s += f"; clock warnings in {len(warned)} bag(s)"
        return s
