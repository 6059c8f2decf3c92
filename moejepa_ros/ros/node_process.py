"""Start a node in a child process and always stop it: for moejepa-bringup, tests, benchmarks and the demo.

`NodeProcess` runs `python -m moejepa_ros.ros.<node> --ros-args ...` in its own process group
and cleans up with SIGINT (the node publishes its zero command), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moejepa_ros.ros import dds


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus unbuffered output and the FastDDS large-image profile."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    dds.ensure_fastdds_profile(env)
    env.update(extra or {})
    return env


class NodeProcess:
    """One node in a child process; a context manager that always stops it."""

    def __init__(
        self,
        module: str,
        params_file: str | Path | None = None,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        namespace: str | None = None,
        remaps: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        echo: bool = False,
    ):
        mod = module if "." in module else f"moejepa_ros.ros.{module}"
        cmd = [python or sys.executable, "-m", mod, "--ros-args"]
        if params_file is not None:
            cmd += ["--params-file", str(params_file)]
        for k, v in (params or {}).items():
            cmd += ["-p", f"{k}:={_param_str(v)}"]
        if name:
            cmd += ["-r", f"__node:={name}"]
        if namespace:
            cmd += ["-r", "__ns:=/" + namespace.lstrip("/")]  # rcl wants it absolute
        for a, b in (remaps or {}).items():
            cmd += ["-r", f"{a}:={b}"]
        self.cmd = cmd
        self.env = child_env(env)
        self.log_path = Path(log_path) if log_path else None
        self.echo = echo  # no log file: the output goes to our stdout (bringup), not nowhere
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> NodeProcess:
        if self.log_path is not None:
            self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=self._log or (None if self.echo else subprocess.DEVNULL),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else -1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_line(self) -> str:
        """The last non-empty line of the log (a failing node's reason), or ''."""
        lines = [ln for ln in self.output().splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""

    def output(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (the node publishes its zero command), then SIGTERM, then SIGKILL."""
        if self.proc is None:
            return None
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        rc = self.proc.poll()
        if self._log is not None:
            self._log.close()
            self._log = None
        return rc

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _param_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_param_str(x) for x in v) + "]"
    return str(v)
