"""The shipped launch files under a real launch system: launch's `LaunchService` runs each one from a colcon
install tree (as `ros2 launch moejepa_ros <file>` does, see testing/launch_run.py), launch_ros finds the
nodes through the ament index, and a probe watches them over DDS.

Needs the `launch` and `launch_ros` packages, not the `ros2` command: a sourced ROS 2, or the pure-Python
packages on PYTHONPATH (`PYTHONPATH=<folder with launch, launch_ros>:$PWD pytest test/test_ros_launch.py`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("colcon_core", reason="colcon is not installed (requirements.txt has it: `make install`)")
pytest.importorskip(
    "launch_ros",
    reason="launch_ros is not importable: source a ROS 2, or put the launch and launch_ros packages on PYTHONPATH",
)

from geometry_msgs.msg import Twist
from sensor_msgs.msg import Image
from std_msgs.msg import String

from moejepa_ros.codecs.image import make_image
from moejepa_ros.ros import dds
from moejepa_ros.ros.messages import COMMAND_QOS, RESULTS_QOS
from moejepa_ros.ros.node_process import child_env
from moejepa_ros.ros.probe import Probe, wait_until
from testing.colcon import ROOT, colcon_build

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    """The package's install prefix in a fresh colcon workspace."""
    return colcon_build(tmp_path_factory.mktemp("launch_ws"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from moejepa_ros.model import save_checkpoint
    from testing.models import tiny_model

    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, tiny_model(), {"action_low": [-2.45, -2.45], "action_high": [2.45, 2.45]})


def demo_params(tmp_path: Path) -> Path:
    """The shipped sim_demo.yaml, sized for a test: 20-step episodes, a small planner, the l2 goal metric (the
    tiny model has no goal-distance head), and the sim waiting for the probe's episode_result subscription."""
    import yaml

    doc = yaml.safe_load((ROOT / "config" / "sim_demo.yaml").read_text())
    doc["sim_node"]["ros__parameters"].update(max_episode_steps=20, min_result_subscribers=1)
    planner = doc["planner_node"]["ros__parameters"]
    planner["planner"].update(samples=32, elites=4, keep_elites=2)
    planner["objectives"]["goal"]["metric"] = "l2"
    path = tmp_path / "sim_demo_test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def launch_env(prefix: Path, path: str | None = None) -> dict[str, str]:
    """A sourced install tree's environment: its site-packages first and its prefix on AMENT_PREFIX_PATH, the
    checkout off PYTHONPATH (launch and launch_ros stay), no FastDDS profile (the launch files set it)."""
    site = next(prefix.glob("lib/python3*/site-packages"))
    keep = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != ROOT]
    ament = [str(prefix), *filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]
    env = child_env({"PYTHONPATH": os.pathsep.join([str(site), *keep]), "AMENT_PREFIX_PATH": os.pathsep.join(ament)})
    env.pop(dds.ENV_VAR, None)
    if path is not None:
        env["PATH"] = path
    return env


class Launch:
    """`ros2 launch moejepa_ros <file> args...` in a child process group, its output in a log file."""

    def __init__(self, prefix: Path, log: Path, file: str, *args: str, path: str | None = None):
        self.log = log
        cmd = [sys.executable, str(ROOT / "testing" / "launch_run.py"), "moejepa_ros", file, *args]
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                cmd, env=launch_env(prefix, path), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait(self, timeout: float = 60, interrupt: bool = False) -> tuple[int, str]:
        """The exit status and output, after Ctrl-C first when `interrupt` (SIGINT to the process group, as a
        terminal sends it: launch then leaves the nodes' own SIGINT to them); the group is killed on timeout."""
        if interrupt:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode, self.log.read_text()


def test_sim_demo_launch_runs_the_closed_loop_and_ends_after_its_episodes(prefix, checkpoint, tmp_path):
    with Probe("launch_probe") as probe:
        actions = probe.subscribe(Twist, "/action", COMMAND_QOS)
        results = probe.subscribe(String, "/sim_node/episode_result", RESULTS_QOS)
        run = Launch(prefix, tmp_path / "launch.log", "sim_demo.launch.py", f"checkpoint:={checkpoint}",
                     f"params_file:={demo_params(tmp_path)}", "episodes:=2")  # fmt: skip
        rc, out = run.wait()
        got = [json.loads(m.data) for m in results.wait(2, timeout=5)]
    assert rc == 0, out
    assert [r["steps"] for r in got] == [20, 20] or any(r["success"] for r in got), got  # the params file applied
    assert any(m.linear.x or m.linear.y for m in actions.msgs), len(actions)  # planned commands on the sim's topic
    assert "sim_node exited normally: shutting the launch down" in out
    assert "planner_node exited" not in out and "Traceback" not in out, out  # stopped by the launch, quietly


def test_sim_demo_launch_under_a_namespace_with_a_managed_planner(prefix, checkpoint, tmp_path):
    """namespace:=/robot1 moves both nodes and their relative topics; the plain-key params file still applies;
    managed:=true: the launch itself configures and activates the LifecycleNode."""
    with Probe("launch_probe") as probe:
        actions = probe.subscribe(Twist, "/robot1/action", COMMAND_QOS)
        stray = probe.subscribe(Twist, "/action", COMMAND_QOS)
        results = probe.subscribe(String, "/robot1/sim_node/episode_result", RESULTS_QOS)
        run = Launch(prefix, tmp_path / "launch.log", "sim_demo.launch.py", f"checkpoint:={checkpoint}",
                     f"params_file:={demo_params(tmp_path)}", "episodes:=1", "namespace:=/robot1",
                     "managed:=true")  # fmt: skip
        rc, out = run.wait()
        [result] = [json.loads(m.data) for m in results.wait(1, timeout=5)]
    assert rc == 0, out
    assert result["steps"] == 20 or result["success"], result
    assert actions.msgs and not stray.msgs
    assert "configured: activating" in out and "[robot1.planner_node]" in out, out
    assert "Traceback" not in out and "ERROR" not in out, out


def test_sim_demo_launch_with_a_failing_planner_stops_the_sim_and_exits_non_zero_with_the_reason(prefix, tmp_path):
    run = Launch(
        prefix, tmp_path / "launch.log", "sim_demo.launch.py", f"checkpoint:={tmp_path / 'missing.safetensors'}"
    )
    rc, out = run.wait()
    assert rc != 0, out
    assert "planner_node failed (exit status 1): shutting the launch down" in out, out
    assert "missing.safetensors" in out and "does not exist" in out, out  # the planner's own reason
    assert "sim_node exited" not in out, out  # the launch stopped the sim; it did not end by itself


@pytest.mark.parametrize(
    "file, args, node, camera, command, from_yaml",
    [
        ("planner.launch.py", ["namespace:=robot1", "image_topic:=/cam", "action_topic:=cmd"],
         "/robot1/planner_node", "/cam", "/robot1/cmd", {"planner.samples": 128}),
        ("isaac_sim.launch.py", ["namespace:=robot2", "managed:=true"],
         "/robot2/planner_node", "/rgb", "/cmd_vel", {"camera_timeout": 1.0, "use_sim_time": True}),
    ],
)  # fmt: skip
def test_robot_launch_plans_on_camera_images_and_stops_on_ctrl_c(
    prefix, checkpoint, tmp_path, file, args, node, camera, command, from_yaml
):
    """The planner alone, as on a robot: its params file applies under the namespace, the remapped camera topic
    feeds it, commands come out on the remapped topic; Ctrl-C ends the launch cleanly."""
    with Probe("launch_probe") as probe:
        commands = probe.subscribe(Twist, command, COMMAND_QOS)
        images = probe.publisher(Image, camera)
        run = Launch(prefix, tmp_path / "launch.log", file, f"checkpoint:={checkpoint}", *args)
        frame = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        stop = threading.Event()

        def stream():
            while not stop.wait(0.1):
                images.publish(make_image(Image, frame, "rgb8", probe.node.get_clock().now().nanoseconds, "camera"))

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        try:
            wait_until(lambda: len(commands) > 0 or run.proc.poll() is not None, 60, f"a command on {command}")
            assert commands.msgs, run.log.read_text()
            assert probe.get_parameters(node, from_yaml) == from_yaml
        finally:
            stop.set()
            streamer.join()
        rc, out = run.wait(interrupt=True)
    assert rc == 0, out
    assert "Traceback" not in out and "escalating" not in out, out  # the node ended on SIGINT


def test_replay_launch_fails_at_once_without_a_bag_or_without_ros2_bag(prefix, tmp_path):
    """Before any process starts: no bag:= argument, then a bag but no `ros2` on PATH (an empty PATH folder)."""
    (tmp_path / "bin").mkdir()
    rc, out = Launch(prefix, tmp_path / "nobag.log", "replay.launch.py").wait()
    assert rc != 0 and "replay.launch.py needs bag:=" in out, out
    rc, out = Launch(prefix, tmp_path / "noros2.log", "replay.launch.py", f"bag:={tmp_path}",
                     path=str(tmp_path / "bin")).wait()  # fmt: skip
    assert rc != 0 and "`ros2` is not on PATH" in out, out
    assert "process started" not in out, out
