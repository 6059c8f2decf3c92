"""sim_node as a real process: images, goal, episode markers, reaction to actions, results, /clock."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")

from geometry_msgs.msg import Twist
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float32MultiArray, Int32, String

from moejepa_ros import codecs
from moejepa_ros.ros.messages import CAMERA_QOS, LATCHED_QOS, RESULTS_QOS, stamp_ns
from moejepa_ros.ros.node_process import NodeProcess
from moejepa_ros.ros.probe import Probe
from testing.ros_harness import write_params

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


def agent_x(msg: Image) -> float:
    """Column of the agent: the red channel's intensity-weighted centroid (Two-Rooms draws it in red)."""
    red = codecs.image_to_rgb(msg)[:, :, 0].astype(np.float64)
    return float((red.sum(0) * np.arange(red.shape[1])).sum() / red.sum())


@pytest.fixture
def probe():
    p = Probe("test_sim_probe")
    yield p
    p.close()


def test_sim_publishes_and_reacts_to_actions(tmp_path, probe):
    params = write_params(
        tmp_path / "sim.yaml",
        {
            "sim_node": {
                "env": "two_rooms",
                "mode": "goal",
                "rate": 60.0,
                "max_episode_steps": 400,
                "seed": 3,
                "twist_fields": ["linear.x", "linear.y"],
                "publish_clock": True,
                "wait_for_action": True,
            }
        },
    )
    images = probe.subscribe(Image, "image", CAMERA_QOS)
    goals = probe.subscribe(Image, "goal_image", LATCHED_QOS)
    rewards = probe.subscribe(Float32, "reward")
    episodes = probe.subscribe(Int32, "episode", LATCHED_QOS)
    clock = probe.subscribe(Clock, "/clock")
    act = probe.publisher(Twist, "action")
    with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log") as sim:
        first = images.wait(3, timeout=30)
        assert first[0].encoding == "rgb8" and (first[0].height, first[0].width) == (64, 64)
        assert first[0].header.frame_id == "camera"
        goal = goals.wait(1, timeout=10)[0]
        assert (goal.height, goal.width) == (64, 64)
        assert episodes.wait(1, timeout=10)[0].data == 0
        # wait_for_action: the first frame repeats, the world does not step, no reward yet.
        assert len(rewards) == 0
        assert len({bytes(m.data) for m in images.msgs[:3]}) == 1

        probe.wait_for_subscribers(act, 1, timeout=20)
        x0 = agent_x(images.msgs[-1])
        move = Twist()
        move.linear.x = 2.0  # px/step, +x; zero-order hold keeps applying it
        act.publish(move)
        rewards.wait(10, timeout=20)
        n0 = len(images)
        images.wait(n0 + 5, timeout=10)
        xs = [agent_x(m) for m in images.msgs[-5:]]
        assert max(xs) > x0 + 1.0 or xs[-1] >= 58, f"agent did not move right: {x0} -> {xs}"
        assert all(np.isfinite(r.data) and r.data <= 0 for r in rewards.msgs)  # -distance to the goal
        # /clock is sim time = steps / rate, and images are stamped with it.
        ticks = [stamp_ns(c.clock) for c in clock.wait(5, timeout=10)]
        assert ticks == sorted(ticks) and ticks[-1] > 0
        steps = stamp_ns(images.msgs[-1].header.stamp) * 60 / 1e9
        assert steps >= 10 and abs(steps - round(steps)) < 1e-6
        assert sim.alive()


def test_episodes_end_with_results_and_the_node_exits(tmp_path, probe):
    params = write_params(
        tmp_path / "sim.yaml",
        {
            "sim_node": {
                "rate": 200.0,
                "max_episode_steps": 15,
                "episodes": 2,
                "wait_for_action": True,
                "action_type": "float32_multi_array",
            }
        },
    )
    results = probe.subscribe(String, "sim_node/episode_result", RESULTS_QOS)
    episodes = probe.subscribe(Int32, "episode", LATCHED_QOS)
    act = probe.publisher(Float32MultiArray, "action")
    with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log") as sim:
        probe.wait_for_subscribers(act, 1, timeout=30)
        probe.wait_for_publishers("sim_node/episode_result", 1, timeout=10)
        # The sim holds episode 0 until the first action: receive its latched marker first, so
        # the later [0, 1] order cannot depend on discovery timing.
        assert [m.data for m in episodes.wait(1, timeout=30)] == [0]
        act.publish(Float32MultiArray(data=[1.0, 2.0, 3.0]))  # wrong length: dropped, not fatal
        act.publish(Float32MultiArray(data=[0.5, -0.5]))  # starts the run (wait_for_action)
        got = [json.loads(m.data) for m in results.wait(2, timeout=30)]
        assert [r["episode"] for r in got] == [0, 1]
        assert all(r["steps"] == 15 and r["truncated"] and not r["success"] for r in got)
        assert {"success", "steps", "return", "final_distance"} <= set(got[0])
        assert [m.data for m in episodes.msgs] == [0, 1]
        assert got[-1]["bad_actions"] == 1
        sim.proc.wait(15)
        assert sim.proc.returncode == 0, sim.output()[-2000:]
        assert "finished 2 episodes" in sim.output()


def test_mobile_base_is_served_with_its_node_config(tmp_path, probe):
    """config/mobile_base_demo.yaml's sim_node: the robot's camera at 15 Hz, a goal image, Twist drives it,
    and an episode result carries the path (x, y) and the goal."""
    import yaml

    from moejepa_ros.ros.launch_common import config_dir

    doc = yaml.safe_load(open(f"{config_dir()}/mobile_base_demo.yaml"))["sim_node"]["ros__parameters"]
    doc.update(episodes=1, max_episode_steps=20, rate=60.0)
    params = write_params(tmp_path / "sim.yaml", {"sim_node": doc})
    images = probe.subscribe(Image, "image", CAMERA_QOS)
    goals = probe.subscribe(Image, "goal_image", LATCHED_QOS)
    results = probe.subscribe(String, "sim_node/episode_result", RESULTS_QOS)
    act = probe.publisher(Twist, "action")
    with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log") as sim:
        first = images.wait(1, timeout=30)[0]
        assert first.header.frame_id == "camera_color_optical_frame" and (first.height, first.width) == (64, 64)
        goal = goals.wait(1, timeout=10)[0]
        assert bytes(goal.data) != bytes(first.data)
        probe.wait_for_subscribers(act, 1, timeout=20)
        probe.wait_for_publishers("sim_node/episode_result", 1, timeout=10)
        turn = Twist()
        turn.angular.z = 1.0
        act.publish(turn)
        r = json.loads(results.wait(1, timeout=30)[0].data)
        assert r["steps"] == 20 and len(r["path"]) >= 20 and len(r["goal"]) == 2
        assert np.allclose(r["path"][0], r["path"][-1], atol=0.01)  # turning on the spot: no travel
        assert len({bytes(m.data) for m in images.msgs}) > 5  # but the view turned
        sim.proc.wait(15)


def test_reacher_is_served_with_its_node_config(tmp_path, probe):
    """config/reacher_demo.yaml's sim_node: the arm's top-down camera, a goal image (the target hidden), torques
    as Float32MultiArray move the arm, and the episode ends after its 50 steps with the joint error."""
    import yaml

    from moejepa_ros.ros.launch_common import config_dir

    doc = yaml.safe_load(open(f"{config_dir()}/reacher_demo.yaml"))["sim_node"]["ros__parameters"]
    doc.update(episodes=1, rate=100.0)
    params = write_params(tmp_path / "sim.yaml", {"sim_node": doc})
    images = probe.subscribe(Image, "image", CAMERA_QOS)
    goals = probe.subscribe(Image, "goal_image", LATCHED_QOS)
    results = probe.subscribe(String, "sim_node/episode_result", RESULTS_QOS)
    act = probe.publisher(Float32MultiArray, "action")
    with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log") as sim:
        first = images.wait(1, timeout=30)[0]
        assert (first.height, first.width) == (64, 64)
        goal = goals.wait(1, timeout=10)[0]
        assert bytes(goal.data) != bytes(first.data)
        probe.wait_for_subscribers(act, 1, timeout=20)
        probe.wait_for_publishers("sim_node/episode_result", 1, timeout=10)
        act.publish(Float32MultiArray(data=[1.0, -1.0]))
        r = json.loads(results.wait(1, timeout=30)[0].data)
        assert r["steps"] == 50 and not r["success"] and r["final_distance"] > 0.05
        assert len({bytes(m.data) for m in images.msgs}) > 5  # the arm moved
        sim.proc.wait(15)


def test_an_env_without_modes_runs_with_the_default_mode_and_step_limit(tmp_path, probe):
    """dmc:... has no `mode` and no `max_episode_steps`: sim_node warns, ignores the mode (the YAML default
    `goal`) and truncates the episode itself."""
    params = write_params(
        tmp_path / "sim.yaml",
        {
            "sim_node": {
                "env": "dmc:cartpole_swingup",
                "mode": "goal",
                "rate": 100.0,
                "max_episode_steps": 6,
                "episodes": 1,
                "wait_for_action": False,
                "action_type": "float32_multi_array",
                "min_result_subscribers": 1,  # the node exits after its one episode: wait for us
            }
        },
    )
    results = probe.subscribe(String, "sim_node/episode_result", RESULTS_QOS)
    with NodeProcess("sim_node", params, log_path=tmp_path / "sim.log") as sim:
        r = json.loads(results.wait(1, timeout=60)[0].data)
        assert r["steps"] == 6 and r["truncated"], r
        sim.proc.wait(15)
        assert sim.proc.returncode == 0, sim.output()[-2000:]
        assert "takes no mode='goal': ignored" in sim.output()
