"""The one results schema of every bench, and where results go.

Every JSON a bench writes is `{machine, command, git_sha, date, figures}`: `figures` is the bench's
own payload, the rest says where and how it was measured. A run writes `out/bench/<name>.json` under
the working directory (plots beside it); with `--record` it updates the curated record instead,
`bench/results/<name>.json` (plots to `docs/`), which BENCHMARKS.md cites.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORD_DIR = ROOT / "bench" / "results"
RECORD_FIGURES = ROOT / "docs"
OUT_DIR = Path("out") / "bench"  # relative to where the bench runs (the repo root, as documented)
SCHEMA_KEYS = ("machine", "command", "git_sha", "date", "figures")


def add_arguments(ap: argparse.ArgumentParser, name: str) -> None:
    """Give a bench's parser `--record` and `--name` (the result's name, e.g. for an ablation's own record)."""
    ap.add_argument(
        "--record",
        action="store_true",
        help="update the curated record (bench/results/, docs/) instead of writing to out/bench/",
    )
    ap.add_argument("--name", default=name, help=f"the result's name: <dir>/<name>.json (default {name})")


def json_path(args: argparse.Namespace) -> Path:
    """Where this run's JSON goes: the record with `--record`, else out/bench/."""
    return (RECORD_DIR if args.record else OUT_DIR) / f"{args.name}.json"


def figure_path(args: argparse.Namespace, suffix: str = "") -> Path:
    """Where this run's plot goes: docs/<name><suffix>.png with `--record`, else out/bench/."""
    return (RECORD_FIGURES if args.record else OUT_DIR) / f"{args.name}{suffix}.png"


def machine() -> dict[str, Any]:
    """CPU model, cores, torch threads and version, OS, and the GPU if torch sees one."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch
    except ImportError:
        return info
    info.update(
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_sha() -> str | None:
    """HEAD of the checkout the bench runs from, `+dirty` when tracked files differ from it."""

    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True, check=True).stdout

    try:
        sha = git("rev-parse", "HEAD").strip()
        return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def command() -> str:
    """This process's command line as run (`python -m bench.<part>.<name> ...`)."""
    return shlex.join(["python", *sys.orig_argv[1:]])


def document(figures: Any) -> dict[str, Any]:
    """Wrap a bench's payload in the schema, describing this process's run."""
    return {
        "machine": machine(),
        "command": command(),
        "git_sha": git_sha(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "figures": figures,
    }


def write_result(args: argparse.Namespace, figures: Any) -> Path:
    """Write `figures` in the schema to this run's JSON path (see `json_path`); returns the path."""
    path = write_json(json_path(args), document(figures))
    print(f"wrote {path}", flush=True)
    return path


def read_figures(path: str | Path) -> Any:
    """The `figures` of a result written by `write_result`."""
    return json.loads(Path(path).read_text())["figures"]


def write_json(path: str | Path, payload: Any) -> Path:
    """Write `payload` as indented JSON via a temp file + rename (a killed run leaves the old file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
    return path


def save_figure(fig: Any, path: str | Path, dpi: int = 80) -> None:
    """Lay out, save (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
