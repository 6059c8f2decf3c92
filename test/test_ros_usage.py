"""`planner_node --help` / `sim_node --help`: usage and the declared parameters, exit 0, no ROS context."""

import subprocess
import sys

import pytest

from moejepa_ros.ros.usage import help_requested


def test_only_our_arguments_ask_for_help():
    assert help_requested(["--help"]) and help_requested(["-h", "--ros-args", "-p", "x:=1"])
    assert not help_requested(["--ros-args", "--help"])  # rclpy's own
    assert not help_requested([])


@pytest.mark.parametrize("node, parameter", [("planner_node", "checkpoint"), ("sim_node", "lockstep")])
def test_help_prints_usage_and_exits_zero(node, parameter):
    out = subprocess.run(
        [sys.executable, "-m", f"moejepa_ros.ros.{node}", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"usage: ros2 run moejepa_ros {node}")
    assert f"\n  {parameter} (" in out.stdout
