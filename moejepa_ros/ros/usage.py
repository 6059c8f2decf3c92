"""`--help` for the node executables: what the node does and its declared parameters, before rclpy starts.

Only the arguments before `--ros-args` are ours, so `--ros-args ... --help` stays rclpy's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

HELP_FLAGS = ("-h", "--help")


def help_requested(args: Sequence[str] | None) -> bool:
    """True when -h / --help comes before `--ros-args` (args: the node's argv without the program name)."""
    args = sys.argv[1:] if args is None else list(args)
    ours = args[: args.index("--ros-args")] if "--ros-args" in args else args
    return any(a in HELP_FLAGS for a in ours)


def usage(executable: str, doc: str, specs: Sequence) -> str:
    """The usage line, the node's summary (its module docstring's first paragraph) and a parameter list."""
    summary = doc.strip().split("\n\n")[0]
    lines = [
        f"usage: ros2 run moejepa_ros {executable} [--ros-args -p NAME:=VALUE --params-file FILE -r FROM:=TO ...]",
        "",
        summary,
        "",
        "parameters (name, type, default: meaning):",
    ]
    for s in specs:
        default = "unset" if s.default is None else repr(s.default)
        ro = " (read-only)" if s.read_only else ""
        lines.append(f"  {s.name} ({s.type.name.lower()}, {default}): {s.description}{ro}")
    return "\n".join(lines)


def print_help_if_requested(executable: str, doc: str, specs: Sequence, args: Sequence[str] | None) -> bool:
    """Print `usage` to stdout and return True when --help was asked for (the caller then exits 0)."""
    if not help_requested(args):
        return False
    print(usage(executable, doc, specs))
    return True
