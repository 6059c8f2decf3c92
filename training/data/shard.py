"""Decode one bag into one cache shard (uint8 frames memmap + per-frame arrays), in this process
or in worker processes started as ``python -m training.data.shard`` (jobs and results are JSON on
stdin/stdout: nothing pickled, and a worker imports only what it needs, never the caller's main
module -- with spawn a training script's torch import alone costs seconds per worker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from moejepa_ros.codecs import GreyRanges
from moejepa_ros.control.preprocess import preprocess

from .bag_reader import iter_bags
from .episode import BagDataError
from .topics import TopicConfig

_PKG_ROOT = Path(__file__).resolve().parents[2]


class _Resize:
    """Frame transform: RGB [h,w,3] -> [H,W,3] by `moejepa_ros.control.preprocess`, the node's resize."""

    def __init__(self, size: tuple[int, int]):
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return preprocess(rgb, self.size)


def write_shard(job: dict) -> dict:
    """Worker: decode one bag and write its shard files; return the shard's JSON description."""
    bag, tmp, k = Path(job["bag"]), Path(job["tmp"]), job["shard"]
    topics = TopicConfig.from_dict(job["topics"])
    t0 = time.perf_counter()
    ((_, eps, summ),) = list(
        iter_bags(
            [bag],
            topics,
            skip_bad=job["skip_bad"],
            transform=_Resize(tuple(job["image_size"])),
            ranges=GreyRanges.from_dict(job["ranges"]),
        )
    )
    out = {
        "bag": str(bag),
        "summary": summ.to_dict(),
        "n": 0,
        "episodes": [],
        "action_dim": None,
        "state_dim": None,
        "state_names": None,
        "seconds": 0.0,
    }
    if not eps:
        return out
    n = sum(len(e) for e in eps)
    h, w = job["image_size"]
    dims = {e.actions.shape[1] for e in eps}
    if len(dims) != 1:
        raise BagDataError(bag, f"action dimension changes within the bag: {sorted(dims)}", topics.action_topic)
    a_dim = dims.pop()
    s_dims = {None if e.state is None else e.state.shape[1] for e in eps}
    s_dim = s_dims.pop() if len(s_dims) == 1 else None
    s_names = {e.state_names for e in eps if e.state is not None}
    s_names = s_names.pop() if s_dim and len(s_names) == 1 else None
    names = {key: f"{key}_{k:04d}.npy" for key in ("frames", "actions", "rewards", "episode", "stamps", "state")}
    frames = np.lib.format.open_memmap(tmp / names["frames"], "w+", np.uint8, (n, h, w, 3))
    actions = np.empty((n, a_dim), np.float32)
    rewards = np.empty(n, np.float32)
    episode = np.empty(n, np.int32)
    stamps = np.empty(n, np.int64)
    state = np.full((n, s_dim), np.nan, np.float32) if s_dim else None
    i = 0
    for j, e in enumerate(eps):
        m = len(e)
        frames[i : i + m] = e.frames
        actions[i : i + m], rewards[i : i + m], episode[i : i + m] = e.actions, e.rewards, j
        stamps[i : i + m] = e.stamps_ns
        if state is not None:
            state[i : i + m] = e.state
        out["episodes"].append({"start": i, "length": m, "marker": int(e.index)})
        i += m
    frames.flush()
    del frames
    np.save(tmp / names["actions"], actions)
    np.save(tmp / names["rewards"], rewards)
    np.save(tmp / names["episode"], episode)
    np.save(tmp / names["stamps"], stamps)
    if state is not None:
        np.save(tmp / names["state"], state)
    else:
        names.pop("state")
    out.update(
        n=n,
        files=names,
        action_dim=a_dim,
        state_dim=s_dim,
        state_names=None if s_names is None else list(s_names),
        seconds=time.perf_counter() - t0,
    )
    return out


def _balance(sizes: list[int], workers: int) -> list[list[int]]:
    """Job indices split into `workers` groups of similar total size (largest first, greedy)."""
    groups: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        g = load.index(min(load))
        groups[g].append(i)
        load[g] += sizes[i]
    return [sorted(g) for g in groups if g]


def run_workers(jobs: list[dict], sizes: list[int], workers: int) -> list[dict]:
    """Run `write_shard` over `jobs` in up to `workers` child processes; results in job order.
    A `BagDataError` in a worker is raised again here with the same file/topic/index."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PKG_ROOT), env.get("PYTHONPATH")]))
    procs = []
    for group in _balance(sizes, workers):
        err = tempfile.TemporaryFile()
        p = subprocess.Popen(
            [sys.executable, "-m", "training.data.shard"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
        p.stdin.write(json.dumps([jobs[i] for i in group]).encode())
        p.stdin.close()
        procs.append((group, p, err))
    results: list[dict | None] = [None] * len(jobs)
    failure = None
    for group, p, err in procs:
        out = p.stdout.read()
        p.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")[-4000:]
        err.close()
        try:
            reply = json.loads(out)
        except ValueError:
            failure = failure or RuntimeError(f"cache worker exited with {p.returncode}: {stderr}")
            continue
        if "bag_error" in reply:
            e = reply["bag_error"]
            failure = failure or BagDataError(e["path"], e["problem"], e["topic"], e["index"])
        elif "error" in reply:
            failure = failure or RuntimeError(f"cache worker failed: {reply['error']}")
        else:
            for i, r in zip(group, reply["shards"]):
                results[i] = r
    if failure is not None:
        raise failure
    return results  # type: ignore[return-value]


def main() -> None:
    """Worker entry: a JSON list of jobs on stdin -> {"shards": [...]} (or an error) on stdout."""
    jobs = json.loads(sys.stdin.read())
    try:
        reply = {"shards": [write_shard(j) for j in jobs]}
    except BagDataError as e:
        reply = {"bag_error": {"path": e.path, "problem": e.problem, "topic": e.topic, "index": e.index}}
    except Exception:
        reply = {"error": traceback.format_exc()[-4000:]}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
