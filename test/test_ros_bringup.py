"""moejepa-bringup end to end: the shipped sim_demo.yaml, sim_node + planner_node in their own
processes over DDS, episodes counted on ~/episode_result, clean exit when the sim finishes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from std_msgs.msg import String

from moejepa_ros.ros.messages import RESULTS_QOS
from moejepa_ros.ros.node_process import child_env
from moejepa_ros.ros.probe import Probe

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]


def test_bringup_runs_the_sim_demo_closed_loop(tmp_path):
    from moejepa_ros.model import save_checkpoint
    from testing.models import tiny_model

    ckpt = save_checkpoint(
        tmp_path / "tiny.safetensors", tiny_model(), {"action_low": [-2.45, -2.45], "action_high": [2.45, 2.45]}
    )
    with Probe("test_bringup_probe") as probe:
        results = probe.subscribe(String, "/sim_node/episode_result", RESULTS_QOS)
        cmd = [
            sys.executable,
            "-m",
            "moejepa_ros.ros.bringup",
            str(ROOT / "config" / "sim_demo.yaml"),
            "--log-dir",
            str(tmp_path / "logs"),
            "--ros-args",
            "-p",
            f"checkpoint:={ckpt}",
            "-p",
            "episodes:=2",
            "-p",
            "max_episode_steps:=20",
            "-p",
            "planner.samples:=32",
            "-p",
            "planner.elites:=4",
            "-p",
            "min_result_subscribers:=1",
            "-p",
            "objectives.goal.metric:=l2",
        ]  # the tiny model has no goal-distance head
        env = child_env()
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)  # bringup must set it itself
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        try:
            out, _ = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        logs = {p.name: p.read_text() for p in (tmp_path / "logs").glob("*.log")}
        assert proc.returncode == 0, out + "\n".join(f"--- {k}\n{v[-2000:]}" for k, v in logs.items())
        assert "FASTDDS_DEFAULT_PROFILES_FILE=" in out and "fastdds_large_images.xml" in out
        assert "sim_node exited with status 0" in out
        got = [json.loads(m.data) for m in results.wait(2, timeout=5)]
        assert [r["steps"] for r in got] == [20, 20] or any(r["success"] for r in got)
        assert "finished 2 episodes" in logs["sim_node.log"]
        assert "loaded" in logs["planner_node.log"] and "Traceback" not in logs["planner_node.log"]


def test_bringup_with_a_failing_planner_stops_the_sim_and_exits_non_zero_with_the_reason(tmp_path):
    """No checkpoint: the planner cannot configure, so the sim must not run on alone (issue 22); the
    reason is the planner log's last line."""
    cmd = [sys.executable, "-m", "moejepa_ros.ros.bringup", str(ROOT / "config" / "sim_demo.yaml")]
    cmd += ["--log-dir", str(tmp_path / "logs"), "--ros-args", "-p", f"checkpoint:={tmp_path / 'missing.safetensors'}"]
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=90)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "planner_node failed (exit status 1): shutting the launch down" in out, out
    assert "missing.safetensors" in out and "does not exist" in out, out  # the planner's own reason
    assert "sim_node exited" not in out  # the sim was stopped, it did not end by itself


def test_bringup_streams_node_output_without_a_log_dir(tmp_path):
    """No --log-dir: each node's output comes through bringup's own, so the planner's reason is on screen."""
    cmd = [sys.executable, "-m", "moejepa_ros.ros.bringup", str(ROOT / "config" / "sim_demo.yaml"), "--only"]
    cmd += ["planner_node", "--ros-args", "-p", f"checkpoint:={tmp_path / 'missing.safetensors'}"]
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=90)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "planner_node: configure failed" in out and "does not exist" in out, out  # printed by the node
    assert not list(tmp_path.glob("*.log"))


def test_ros2_launch_with_a_failing_planner_exits_non_zero_with_the_reason(tmp_path):
    """The same through `ros2 launch`. Runs where a sourced ROS 2 has this package: `colcon build
    --packages-select moejepa_ros && source install/setup.bash && pytest test/test_ros_bringup.py`."""
    import shutil

    pytest.importorskip("launch_ros", reason="needs a sourced ROS 2 (launch_ros is not a wheel here)")
    if shutil.which("ros2") is None:
        pytest.skip("needs `ros2` on PATH (a sourced ROS 2)")
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory("moejepa_ros")
    except Exception:
        pytest.skip("moejepa_ros is not installed in an ament prefix (colcon build + source install/setup.bash)")
    cmd = ["ros2", "launch", "moejepa_ros", "sim_demo.launch.py", f"checkpoint:={tmp_path / 'missing.safetensors'}"]
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "planner_node failed (exit status 1)" in out and "does not exist" in out, out
