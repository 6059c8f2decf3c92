"""moejepa-bringup: start the nodes named in a ROS params YAML, for machines without `ros2 launch`.

`moejepa-bringup config/sim_demo.yaml` reads the file's top-level node names (the
`node_name: ros__parameters:` form the launch files use), starts each node in its own process
(`python -m moejepa_ros.ros.<executable> --ros-args --params-file FILE -r __node:=NAME`),
points FASTDDS_DEFAULT_PROFILES_FILE at the shipped large-image profile unless it is set,
streams every node's output to its own (or, with `--log-dir`, to one log file per node),
forwards SIGINT/SIGTERM and waits. When any node exits, the others are stopped (like a launch
file's shutdown-on-exit) and the first non-zero exit status is returned, with the failing node's
last log line as the reason (a planner that cannot configure ends the whole bringup, status 1). A node's executable
is picked from its name (planner* → planner_node, sim* → sim_node) or given with
`--node NAME=EXECUTABLE`. Arguments after `--ros-args` go to every node.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from moejepa_ros.ros import dds
from moejepa_ros.ros.launch_common import any_namespace, exit_reason, read_params_file
from moejepa_ros.ros.node_process import NodeProcess

EXECUTABLES = ("planner_node", "sim_node")


def nodes_in(params_file: str | Path) -> list[str]:
    """Top-level node names holding `ros__parameters` (wildcard `/**` entries are skipped)."""
    path = Path(params_file)
    doc = read_params_file(path)
    names = []
    for key, body in doc.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ValueError(f"{path}: entry {key!r} has no ros__parameters")
        if "*" in str(key):
            continue
        names.append(str(key))
    if not names:
        raise ValueError(f"{path}: names no nodes")
    return names


def executable_for(name: str, overrides: dict[str, str]) -> str:
    """planner_node / sim_node for a node name (its last path component)."""
    base = name.rstrip("/").split("/")[-1]
    if name in overrides or base in overrides:
        exe = overrides.get(name, overrides.get(base))
    elif base.startswith("planner"):
        exe = "planner_node"
    elif base.startswith("sim"):
        exe = "sim_node"
    else:
        raise ValueError(
            f"cannot tell which executable runs node {name!r}; "
            f"name it planner*/sim* or pass --node {base}=<{'|'.join(EXECUTABLES)}>"
        )
    if exe not in EXECUTABLES:
        raise ValueError(f"--node {name}={exe}: unknown executable; known: {list(EXECUTABLES)}")
    return exe


def _split_name(name: str) -> tuple[str, str]:
    """'/ns/planner_node' → ('/ns', 'planner_node')."""
    parts = name.strip("/").split("/")
    return ("/" + "/".join(parts[:-1]) if len(parts) > 1 else ""), parts[-1]


def build_processes(
    params_file: str | Path,
    only: list[str] | None = None,
    overrides: dict[str, str] | None = None,
    ros_args: list[str] | None = None,
    log_dir: str | Path | None = None,
) -> list[tuple[str, NodeProcess]]:
    overrides = overrides or {}
    out = []
    names = nodes_in(params_file)
    params_file = any_namespace(params_file)  # plain node keys also apply under `-r __ns:=...`
    for name in names:
        if only and name not in only and _split_name(name)[1] not in only:
            continue
        exe = executable_for(name, overrides)
        ns, base = _split_name(name)
        p = NodeProcess(
            exe,
            params_file=Path(params_file).resolve(),
            name=base,
            log_path=(Path(log_dir) / f"{base}.log") if log_dir else None,
            echo=not log_dir,
        )
        if ns:
            p.cmd += ["-r", f"__ns:={ns}"]
        p.cmd += list(ros_args or [])
        out.append((name, p))
    if only:
        missing = [o for o in only if not any(o in (n, _split_name(n)[1]) for n, _ in out)]
        if missing:
            raise ValueError(f"--only {missing}: not in {params_file}")
    return out


def run(procs: list[tuple[str, NodeProcess]], poll: float = 0.1) -> int:
    """Start all, forward SIGINT/SIGTERM, stop everything when one exits; returns the exit status."""
    stop = {"sig": None}

    def on_signal(sig: int, _frame: Any) -> None:
        stop["sig"] = sig

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    rc = 0
    try:
        for name, p in procs:
            p.start()
            print(f"moejepa-bringup: started {name} (pid {p.pid}): {' '.join(p.cmd)}", flush=True)
        while stop["sig"] is None:
            ended = [(n, p) for n, p in procs if not p.alive()]
            if ended:
                for n, p in ended:
                    code = p.proc.returncode
                    print(f"moejepa-bringup: {n} exited with status {code}", flush=True)
                    if code:
                        why = p.last_line()
                        print(f"moejepa-bringup: {exit_reason(n, code)}" + (f": {why}" if why else ""), file=sys.stderr)
                    rc = rc or (code if code and code > 0 else (1 if code else 0))
                break
            time.sleep(poll)
    finally:
        for _, p in procs:  # SIGINT to all at once: each planner publishes its zero command now
            p.signal(signal.SIGINT)
        for _, p in procs:
            p.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return rc


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    ap = argparse.ArgumentParser(prog="moejepa-bringup", description=__doc__.split("\n\n")[0])
    ap.add_argument("params_file", help="ROS params YAML naming the nodes to start")
    ap.add_argument("--only", action="append", default=[], help="start only this node (repeatable)")
    ap.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NAME=EXECUTABLE",
        help="which executable runs node NAME (planner_node | sim_node)",
    )
    ap.add_argument(
        "--log-dir", default=None, help="write each node's output to <log-dir>/<node>.log (default: stream it here)"
    )
    ap.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    a = ap.parse_args(argv)
    try:
        overrides = dict(s.split("=", 1) for s in a.node)
    except ValueError:
        ap.error(f"--node wants NAME=EXECUTABLE, got {a.node}")
    profile = dds.ensure_fastdds_profile()
    try:
        procs = build_processes(a.params_file, a.only, overrides, ros_args, a.log_dir)
    except ValueError as e:
        print(f"moejepa-bringup: {e}", file=sys.stderr)
        return 2
    if a.log_dir:
        Path(a.log_dir).mkdir(parents=True, exist_ok=True)
    print(f"moejepa-bringup: FASTDDS_DEFAULT_PROFILES_FILE={profile}", flush=True)
    if a.dry_run:
        for name, p in procs:
            print(f"{name}: {' '.join(p.cmd)}")
        return 0
    return run(procs)


if __name__ == "__main__":
    sys.exit(main())
