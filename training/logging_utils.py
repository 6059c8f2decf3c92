"""Run logging: TensorBoard scalars, a JSON-lines metrics file (for plots), a tqdm bar; rank 0 only."""

from __future__ import annotations

import json
import logging
import math
import os
import sys

log = logging.getLogger("moejepa.train")


class _Stderr(logging.StreamHandler):
    """A handler on whatever `sys.stderr` is when a line is written (a test's capture swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def setup_console_logging(is_main: bool) -> None:
    """Plain `INFO` log lines on stderr for rank 0, warnings only for other ranks."""
    if not log.handlers:
        h = _Stderr()
        h.setFormatter(logging.Formatter("[moejepa-train] %(message)s"))
        log.addHandler(h)
        log.propagate = False
    log.setLevel(logging.INFO if is_main else logging.WARNING)


class RunLogger:
    """Scalars to TensorBoard + `metrics.jsonl`; progress bar with ETA; no-op on ranks > 0."""

    def __init__(
        self,
        run_dir: str,
        enabled: bool,
        tensorboard: bool,
        progress: bool,
        total: int,
        initial: int = 0,
        desc: str = "train",
    ):
        self.enabled = enabled
        self.tb = None
        self.bar = None
        self.jsonl = None
        if not enabled:
            return
        os.makedirs(run_dir, exist_ok=True)
        self.jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard import is slow

            self.tb = SummaryWriter(os.path.join(run_dir, "tb"))
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
        if self.tb is not None:
            for k, v in clean.items():
                self.tb.add_scalar(k, v, step)
        if self.jsonl is not None:
            self.jsonl.write(json.dumps({"step": step, **clean}) + "\n")
            self.jsonl.flush()

    def histogram(self, step: int, name: str, values) -> None:
        if self.enabled and self.tb is not None:
            self.tb.add_histogram(name, values, step)

    def progress(self, n: int = 1, postfix: dict[str, float] | None = None) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        if self.jsonl is not None:
            self.jsonl.close()
        self.tb = self.bar = self.jsonl = None


def read_metrics(run_dir: str) -> list:
    """Rows of `metrics.jsonl` (the last value wins when a resumed run re-logs a step)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        return []
    rows: dict[int, dict] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                rows.setdefault(r["step"], {}).update(r)
    return [rows[s] for s in sorted(rows)]
