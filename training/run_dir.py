"""A run directory's bookkeeping, for every command that trains into one (`fit`, `pretrain`, `refine`, `goal`).

- `config.yaml`: the resolved configuration of the latest start; `run.json`: every start's command line,
  git sha (and whether the tree had changes), UTC time and the checkpoint it resumed from.
- ``run.resume=never`` in a directory that holds a run moves that run aside to ``<dir>.<UTC time>`` (one log
  line), so the new run neither deletes nor mixes with it (checkpoints, `latest`, metrics.jsonl, tb/).
- Resuming a checkpoint written under another model config says so in one line (`model_changes`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from omegaconf import OmegaConf

from .config import TrainConfig, to_dict
from .logging_utils import log
from .train_state import CheckpointManager, ResumeError

PRIOR = ("ckpt", "metrics.jsonl", "tb", "model.safetensors", "resume")  # what makes a directory hold a run
_command: list[str] = []  # the command line, as `record_command` was given it


def record_command(argv: list[str]) -> None:
    """Remember the command line (the CLI calls this) for `run.json`."""
    _command[:] = argv


def git_sha() -> tuple[str | None, bool | None]:
    """(HEAD's sha, whether tracked files have changes) of the checkout this code runs from, or (None, None)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def move_aside(run_dir: str, why: str = "run.resume=never") -> str | None:
    """Move a previous run in `run_dir` to `<run_dir>.<UTC time>`; returns where it went (None: nothing there)."""
    if not any(os.path.exists(os.path.join(run_dir, p)) for p in PRIOR):
        return None
    base = f"{run_dir.rstrip(os.sep)}.{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    dest, n = base, 1
    while os.path.exists(dest):
        dest, n = f"{base}-{n}", n + 1
    os.replace(run_dir, dest)
    log.info("%s: moved the previous run in %s aside to %s", why, run_dir, dest)
    return dest


def resume_path(cfg: TrainConfig, ckpt: CheckpointManager) -> str | None:
    """The checkpoint `run.resume` names: auto -> the latest in the run dir (or None), never -> None."""
    r = cfg.run.resume
    if r == "never":
        return None
    if r == "auto":
        return ckpt.latest()
    if os.path.isdir(r):
        return r
    raise ResumeError(f"run.resume={r!r}: not a checkpoint directory (use auto, never or a step_* dir)")


def record(run_dir: str, cfg: TrainConfig, resumed_from: str | None = None) -> None:
    """Write `config.yaml` and add this start to `run.json`."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg))))
    path = os.path.join(run_dir, "run.json")
    doc = {"starts": []}
    if os.path.isfile(path):
        with open(path) as f:
            doc = json.load(f)
    sha, dirty = git_sha()
    doc["starts"].append(
        {
            "command": list(_command),
            "git_sha": sha,
            "git_dirty": dirty,
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resumed_from": resumed_from,
        }
    )
    write_atomic(path, json.dumps(doc, indent=1))


def model_changes(saved: dict, now: dict) -> list[str]:
    """`model.<key>: old -> new` for every model option that differs between a checkpoint's config and now."""
    old, new = saved.get("model") or {}, now.get("model") or {}
    show = lambda d, k: repr(d[k]) if k in d else "default"  # noqa: E731
    return [
        f"model.{k}: {show(old, k)} -> {show(new, k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    ]


def write_atomic(path: str, text: str) -> None:
    """Write `path` through `<path>.tmp` and a rename, so a kill leaves the old file or the new one."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def swap_in(tmp: str, final: str) -> None:
    """Replace directory `final` by the complete directory `tmp`; the previous one stays as `<final>.old` until
    the swap is done, so a kill at any point leaves one whole directory (`last_complete` finds it)."""
    old = f"{final}.old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.isdir(final):
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def last_complete(final: str, marker: str = "state.json") -> str | None:
    """`final`, or `<final>.old` left by a swap a kill interrupted: the first holding `marker`; None if neither."""
    return next((d for d in (final, f"{final}.old") if os.path.isfile(os.path.join(d, marker))), None)
