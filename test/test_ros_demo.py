"""The demo end to end (committed checkpoint, 2 short episodes over DDS) and sim_node's lockstep."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, String

from moejepa_ros.ros.messages import CAMERA_QOS, COMMAND_QOS, LATCHED_QOS, RESULTS_QOS, stamp_ns
from moejepa_ros.ros.node_process import NodeProcess, child_env
from moejepa_ros.ros.probe import Probe
from testing.ros_harness import write_params

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "two_rooms.safetensors"


def test_demo_runs_two_episodes_and_writes_its_outputs(tmp_path):
    assert CHECKPOINT.is_file(), f"the committed demo checkpoint {CHECKPOINT} is missing (see checkpoints/README.md)"
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-m",
        "examples.two_rooms_demo",
        "--episodes",
        "2",
        "--max-episode-steps",
        "6",
        "--out",
        str(out),
        "--seed",
        "7",
        "--time-limit",
        "60",
    ]
    r = subprocess.run(
        cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=100
    )
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in (out / "logs").glob("*.log"))
    assert r.returncode == 0, r.stdout + logs
    text = r.stdout
    for key in ("success rate", "steps to goal", "control rate", "latency", "lockstep", "separate processes"):
        assert key in text, f"summary lacks {key!r}:\n{text}"
    assert "episode   2/2" in text and "CAPPED" not in text
    s = json.loads((out / "summary.json").read_text())
    assert s["episodes"] == 2 and s["loop_mode"] == "lockstep" and not s["capped"]
    assert [x["episode"] for x in s["results"]] == [0, 1]
    assert all(1 <= x["steps"] <= 6 and x["lockstep"] for x in s["results"])
    assert s["sim_steps"] == sum(x["steps"] for x in s["results"])
    # Stamped commands answered the frames (the collector matches them by stamp).
    assert s["commands_per_s"] is not None and s["control_rate_hz"] is not None
    assert s["commands_per_s"] > 0 and s["control_rate_hz"] > 0
    assert s["loop_latency_ms_p50"] is not None and s["loop_latency_ms_p50"] > 0
    png, gif = out / "trajectories.png", out / "episode.gif"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a") and gif.stat().st_size < 1_000_000


def test_sim_lockstep_steps_only_for_an_answer_to_the_held_frame(tmp_path):
    params = write_params(
        tmp_path / "sim.yaml",
        {
            "sim_node": {
                "rate": 200.0,
                "max_episode_steps": 50,
                "seed": 5,
                "action_type": "twist_stamped",
                "twist_fields": ["linear.x", "linear.y"],
                "lockstep": True,
                "lockstep_timeout": 1.0,
                "episode_hold_frames": 2,
                "env": "two_rooms",
                "mode": "goal",
            }
        },
    )
    with Probe("test_lockstep_probe") as probe:
        images = probe.subscribe(Image, "image", CAMERA_QOS)
        goals = probe.subscribe(Image, "goal_image", LATCHED_QOS)
        rewards = probe.subscribe(Float32, "reward")
        act = probe.publisher(TwistStamped, "action", COMMAND_QOS)

        def answer(stamp: int) -> None:
            msg = TwistStamped()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            msg.twist.linear.x = 1.0
            act.publish(msg)

        with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log") as sim:
            first = images.wait(1, timeout=30)[0]  # republished every lockstep_timeout until answered
            probe.wait_for_subscribers(act, 1, timeout=20)
            answer(stamp_ns(first.header.stamp) - 1)  # a stale stamp: no step, no new frame
            time.sleep(0.2)
            assert len(rewards) == 0
            # the goal comes with the last held copy, whose answer is the first one executed: a
            # planner resets on it, so its online correction never learns from unexecuted answers
            assert len(goals) == 0
            # Answer the newest frame three times over: two hold frames (the planner's stack fills
            # with the first frame), then one real step.
            for k in range(3):
                n = len(images)
                answer(stamp_ns(images.msgs[-1].header.stamp))
                images.wait(n + 1, timeout=10)
                if k == 1:  # the second answer brought the last held copy, and the goal with it
                    goals.wait(1, timeout=10)
                    assert stamp_ns(goals.msgs[0].header.stamp) == stamp_ns(images.msgs[-1].header.stamp)
            rewards.wait(1, timeout=10)
            time.sleep(0.3)  # no answer to the new frame: the world must not move on
            assert len(rewards) == 1, f"stepped {len(rewards)} times for one answer"
            stamps = [stamp_ns(m.header.stamp) for m in images.msgs]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # resends get fresh stamps
            assert sim.alive(), sim.output()[-2000:]


def test_results_carry_the_path_for_the_demo_figures(tmp_path):
    params = write_params(
        tmp_path / "sim.yaml",
        {
            "sim_node": {
                "rate": 200.0,
                "max_episode_steps": 5,
                "episodes": 1,
                "seed": 0,
                "action_type": "float32_multi_array",
            }
        },
    )
    from std_msgs.msg import Float32MultiArray

    with Probe("test_demo_path_probe") as probe:
        results = probe.subscribe(String, "sim_node/episode_result", RESULTS_QOS)
        act = probe.publisher(Float32MultiArray, "action")
        with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log"):
            probe.wait_for_subscribers(act, 1, timeout=30)
            act.publish(Float32MultiArray(data=[1.0, 0.0]))
            r = json.loads(results.wait(1, timeout=30)[0].data)
    path = r["path"]
    assert len(path) == r["steps"] + 1 == 6
    assert all(len(p) == 2 for p in path) and path[-1][0] > path[0][0]  # moved +x (or stopped at a wall)
    assert {"goal", "wall_x", "door_y"} <= set(r)

    from examples.demo_figures import draw_trajectories, write_episode_gif

    png = draw_trajectories([r], tmp_path / "t.png")
    gif = write_episode_gif(r, tmp_path / "e.gif", max_bytes=50_000)
    assert png.stat().st_size > 1000 and gif.stat().st_size <= 50_000
