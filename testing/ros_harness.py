"""Support for running our nodes in child processes from tests, benchmarks and the demo (no rclpy here).

`write_params` writes the params file the nodes start from. The nodes run through
`moejepa_ros.ros.node_process`; `moejepa_ros.ros.probe.Probe` talks to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def write_params(path: str | Path, nodes: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a ROS params file (`<node>: {ros__parameters: {...}}`); dotted keys stay flat."""
    path = Path(path)
    path.write_text(yaml.safe_dump({n: {"ros__parameters": dict(p)} for n, p in nodes.items()}, sort_keys=False))
    return path


def diag_values(arr) -> dict[str, str]:
    """The key/value pairs of a DiagnosticArray's first status (the node's control status)."""
    return {kv.key: kv.value for kv in arr.status[0].values}


def is_zero(msg) -> bool:
    """A TwistStamped command that is exactly the zero command."""
    t = msg.twist
    return all(v == 0.0 for v in (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))
