"""Our nodes against ROS's own behaviour, not only against each other (issue 18): default-QoS peers,
QoS overrides from parameters, command frames, namespaces with one params file, the debug view, sim time.

Real node processes over DDS. Two planners run side by side in /robot1 and /robot2 from one `/**:`
params file (robot1 with the debug view on); only robot1 gets a camera and a goal image.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped, Vector3Stamped
from nav_msgs.msg import Path as PathMsg
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from moejepa_ros import codecs
from moejepa_ros.ros.messages import IMAGE_PUB_QOS, LATCHED_QOS, stamp_ns
from moejepa_ros.ros.node_process import NodeProcess
from moejepa_ros.ros.probe import Probe, wait_until
from testing.ros_harness import diag_values, is_zero, write_params

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

LOW, HIGH = [-0.5, -1.0], [0.5, 1.0]
TIME_STEP_S = 0.1  # the checkpoint says it was trained at 10 Hz; the test camera runs at 30 Hz


def planner_params(ckpt, **over):
    p = {
        "checkpoint": str(ckpt),
        "action_type": "twist_stamped",
        "twist_fields": ["linear.x", "angular.z"],
        "control_rate": 30.0,
        "camera_timeout": 0.5,
        "diagnostics_period": 0.2,
        "planner.samples": 16,
        "planner.horizon": 4,
        "planner.iterations": 1,
        "planner.elites": 4,
        "objectives.goal.enabled": True,
        "objectives.reward.enabled": False,  # goal-only: the plan waits for a goal image
    }
    p.update(over)
    return p


def image_msg(i: int, stamp: int) -> Image:
    rgb = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return codecs.make_image(Image, rgb, "rgb8", stamp, "cam_optical")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from moejepa_ros.model import save_checkpoint
    from testing.models import tiny_model

    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    meta = {"action_low": LOW, "action_high": HIGH, "preprocessing": {"time_step_s": TIME_STEP_S}}
    save_checkpoint(path, tiny_model(), meta)
    return path


@pytest.fixture(scope="module")
def probe():
    p = Probe("test_interop_probe")
    yield p
    p.close()


@pytest.fixture(scope="module")
def robots(ckpt, tmp_path_factory, probe):
    """/robot1/planner_node and /robot2/planner_node from one params file with `/**:` keys."""
    d = tmp_path_factory.mktemp("robots")
    shared = write_params(d / "shared.yaml", {"/**": planner_params(ckpt, command_frame_id="robot_base")})
    procs = {}
    try:
        for ns in ("robot1", "robot2"):
            debug = {"debug.enabled": ns == "robot1", "debug.image_rate": 5.0}
            procs[ns] = NodeProcess(
                "planner_node", shared, params=debug, namespace=ns, log_path=d / f"{ns}.log"
            ).start()
        actions = {ns: probe.subscribe(TwistStamped, f"/{ns}/action") for ns in procs}
        for ns, p in procs.items():
            try:
                actions[ns].wait(1, timeout=60)  # up: zero commands while it has no image
            except TimeoutError:
                pytest.fail(f"/{ns}/planner_node did not come up:\n" + p.output()[-3000:])
        yield procs, actions
    finally:
        for p in procs.values():
            p.stop()


@pytest.fixture(scope="module")
def robot1_planning(robots, probe):
    """A camera on /robot1/image for the rest of the module, and a goal from a default-QoS publisher."""
    procs, actions = robots
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    images = probe.publisher(Image, "/robot1/image", IMAGE_PUB_QOS)
    goals = probe.publisher(Image, "/robot1/goal_image", 10)  # reliable, volatile, depth 10: `ros2 topic pub`
    probe.wait_for_subscribers(images, 1, timeout=30)
    probe.wait_for_subscribers(goals, 1, timeout=30)
    stop = threading.Event()
    stamps: list[int] = []

    def camera():
        i = 0
        while not stop.is_set():
            stamps.append(1_000_000_000 + i * 33_000_000)
            images.publish(image_msg(i, stamps[-1]))
            i += 1
            stop.wait(1 / 30)

    thread = threading.Thread(target=camera, daemon=True)
    thread.start()
    mine = "/robot1/planner_node: control"
    try:
        diags.wait(1, timeout=30, pred=lambda a: a.status[0].name == mine and "goal" in a.status[0].message)
        goals.publish(image_msg(99, 1_000_000_000))
        yield diags, stamps
    finally:
        stop.set()
        thread.join()


def test_a_default_qos_goal_image_switches_the_goal_objective_on(robot1_planning):
    diags, _ = robot1_planning
    mine = "/robot1/planner_node: control"
    got = diags.wait(1, timeout=30, pred=lambda a: a.status[0].name == mine and diag_values(a)["goal"] == "True")
    assert diag_values(got[-1])["goal_images"] == "1"


def test_stamped_commands_carry_command_frame_id_and_the_image_stamp(robots, robot1_planning):
    procs, actions = robots
    _, stamps = robot1_planning
    got = actions["robot1"].wait(3, timeout=30, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))
    assert {m.header.frame_id for m in got} == {"robot_base"}  # never the camera's cam_optical
    assert all(m.header.frame_id == "robot_base" for m in actions["robot2"].msgs)


def test_a_params_file_applies_under_a_namespace_and_two_planners_do_not_cross(robots, robot1_planning, probe):
    procs, actions = robots
    _, stamps = robot1_planning
    for ns in ("robot1", "robot2"):
        got = probe.get_parameters(f"/{ns}/planner_node", ["planner.horizon", "command_frame_id", "debug.enabled"])
        assert got == {"planner.horizon": 4, "command_frame_id": "robot_base", "debug.enabled": ns == "robot1"}
    actions["robot1"].wait(3, timeout=30, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))
    # robot2 heard none of robot1's camera frames: everything it sent is the stamped-now zero command.
    assert actions["robot2"].msgs and all(is_zero(m) for m in actions["robot2"].msgs)
    assert not {stamp_ns(m.header.stamp) for m in actions["robot2"].msgs} & set(stamps)
    assert all(p.alive() for p in procs.values())


def test_the_plan_path_scalars_and_debug_image_appear_with_the_command_stamp(robots, robot1_planning, probe):
    _, stamps = robot1_planning
    paths = probe.subscribe(PathMsg, "/robot1/planner_node/plan_path")
    distances = probe.subscribe(Vector3Stamped, "/robot1/planner_node/goal_distance")
    costs = probe.subscribe(Vector3Stamped, "/robot1/planner_node/predicted_cost")
    debug_images = probe.subscribe(Image, "/robot1/planner_node/debug_image")
    path = paths.wait(1, timeout=30, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))[-1]
    t0 = stamp_ns(path.header.stamp)
    assert path.header.frame_id == "robot_base" and len(path.poses) == 4 + 1  # the origin, then one per step
    assert [stamp_ns(p.header.stamp) - t0 for p in path.poses] == [round(k * TIME_STEP_S * 1e9) for k in range(5)]
    start = path.poses[0].pose
    assert (start.position.x, start.position.y, start.orientation.w) == (0.0, 0.0, 1.0)
    for box in (distances, costs):
        m = box.wait(1, timeout=30, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))[-1]
        assert m.header.frame_id == "robot_base" and math.isfinite(m.vector.x)
    img = debug_images.wait(1, timeout=30, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))[-1]
    assert (img.encoding, img.height, img.width, img.header.frame_id) == ("rgb8", 256, 512, "cam_optical")
    assert probe.node.count_publishers("/robot2/planner_node/plan_path") == 0  # debug view off by default
    diags, _ = robot1_planning
    mine = "/robot1/planner_node: control"
    diags.wait(1, timeout=30, pred=lambda a: a.status[0].name == mine and "debug_ms_p99" in diag_values(a))


def test_the_node_warns_once_when_the_camera_rate_differs_from_the_trained_time_step(robots, robot1_planning):
    procs, actions = robots
    _, stamps = robot1_planning
    actions["robot1"].wait(30, timeout=30, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))
    wait_until(lambda: "trained at 10.0 Hz" in procs["robot1"].output(), timeout=30, what="the rate warning")
    assert procs["robot1"].output().count("trained at 10.0 Hz") == 1
    assert "trained at" not in procs["robot2"].output()  # no camera, no rate to judge


# ------------------------------------------------------------------------ sim_node: QoS a driver uses
def test_a_default_subscriber_receives_sim_images_and_qos_overrides_apply(tmp_path, probe):
    ns = "simq"
    params = write_params(
        tmp_path / "sim.yaml",
        {"/**": {"rate": 30.0, "qos_overrides": {f"/{ns}/episode": {"publisher": {"durability": "volatile"}}}}},
    )
    images = probe.subscribe(Image, f"/{ns}/image")  # default QoS: reliable, volatile, depth 10
    with NodeProcess("sim_node", params, namespace=ns, log_path=tmp_path / "sim.log") as sim:
        try:
            images.wait(3, timeout=60)
        except TimeoutError:
            pytest.fail("no sim image reached a default-QoS subscriber:\n" + sim.output()[-3000:])
        for topic in ("image", "goal_image", "episode"):
            probe.wait_for_publishers(f"/{ns}/{topic}", 1, timeout=30)
        [image_pub] = probe.node.get_publishers_info_by_topic(f"/{ns}/image")
        assert image_pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        [goal_pub] = probe.node.get_publishers_info_by_topic(f"/{ns}/goal_image")
        assert goal_pub.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL  # the shipped default
        [episode_pub] = probe.node.get_publishers_info_by_topic(f"/{ns}/episode")
        assert episode_pub.qos_profile.durability == DurabilityPolicy.VOLATILE  # overridden from the file


# ------------------------------------------------------------------------ sim time
def test_a_paused_simulator_is_not_a_stale_camera(ckpt, tmp_path, probe):
    """Under use_sim_time the camera timeout follows /clock: frozen clock, no zero command; clock moves on
    past camera_timeout without images, zero command."""
    ns = "simtime"
    params = write_params(tmp_path / "p.yaml", {"/**": planner_params(ckpt, use_sim_time=True, camera_timeout=0.3)})
    clock = probe.publisher(Clock, "/clock", 10)
    actions = probe.subscribe(TwistStamped, f"/{ns}/action")
    images = probe.publisher(Image, f"/{ns}/image", IMAGE_PUB_QOS)
    goals = probe.publisher(Image, f"/{ns}/goal_image", LATCHED_QOS)
    goals.publish(image_msg(99, 0))
    sim_ns = 5_000_000_000

    def tick(t_ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = t_ns // 1_000_000_000, t_ns % 1_000_000_000
        clock.publish(msg)

    with NodeProcess("planner_node", params, namespace=ns, log_path=tmp_path / "p.log") as proc:
        probe.wait_for_subscribers(images, 1, timeout=60)
        probe.wait_for_subscribers(clock, 1, timeout=30)
        probe.wait_for_subscribers(goals, 1, timeout=30)
        for burst in range(6):  # the simulator runs: clock and camera advance together, 1 s per burst
            for i in range(30):
                sim_ns += 33_000_000
                tick(sim_ns)
                images.publish(image_msg(i, sim_ns))
                time.sleep(1 / 30)
            try:  # the latched goal may land after the first burst on a loaded machine: run on until it planned
                actions.wait(1, timeout=5, pred=lambda m: stamp_ns(m.header.stamp) == sim_ns)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("no command on the last frame:\n" + proc.output()[-3000:])
        n = len(actions)
        time.sleep(1.5)  # paused: five camera timeouts of wall time, the clock frozen (proves an absence)
        assert not any(is_zero(m) for m in actions.msgs[n:]), "a paused simulator was taken for a stale camera"
        tick(sim_ns + 1_000_000_000)  # the simulator runs on, the camera stays silent
        zero = actions.wait(1, timeout=30, pred=lambda m: is_zero(m) and stamp_ns(m.header.stamp) > sim_ns)
        assert zero and proc.alive()


# ------------------------------------------------------------------------ launch files under a namespace
LAUNCH = sorted((Path(__file__).resolve().parents[1] / "launch").glob("*.launch.py"))


@pytest.mark.parametrize("path", LAUNCH, ids=[p.name for p in LAUNCH])
def test_every_launch_file_takes_a_namespace(path):
    text = path.read_text()
    assert 'DeclareLaunchArgument("namespace"' in text
    assert text.count("moejepa_node(") == text.count('namespace=get("namespace")') + text.count("namespace=ns")


def test_a_shipped_params_file_applies_under_a_namespace_once_launch_rewrote_it(tmp_path):
    """rcl reads a plain `planner_node:` key as /planner_node only; `any_namespace` makes it /**/planner_node."""
    import rclpy
    from rclpy.node import Node

    from moejepa_ros.ros.launch_common import any_namespace, config_dir

    plain = Path(config_dir()) / "sim_demo.yaml"
    rewritten = any_namespace(plain)
    want = yaml.safe_load(plain.read_text())["planner_node"]["ros__parameters"]["control_rate"]
    assert any_namespace(rewritten) == rewritten  # already namespace-proof: used as it is
    got = {}
    for name, f in (("plain", plain), ("rewritten", rewritten)):
        ctx = rclpy.Context()
        rclpy.init(args=["--ros-args", "--params-file", str(f), "-r", "__ns:=/robot1"], context=ctx)
        try:
            node = Node("planner_node", context=ctx)
            got[name] = node.declare_parameter("control_rate", -1.0).value
            node.destroy_node()
        finally:
            rclpy.shutdown(context=ctx)
    assert got == {"plain": -1.0, "rewritten": want}
    with pytest.raises(ValueError, match="bad.yaml"):
        (tmp_path / "bad.yaml").write_text("- a list\n")
        any_namespace(tmp_path / "bad.yaml")


# ------------------------------------------------------------------------ pure helpers
def test_twists_integrate_to_a_planar_path_and_rates_are_compared_with_the_time_step():
    from moejepa_ros.ros.debug_view import integrate_twists
    from moejepa_ros.ros.time_step import rate_mismatch

    poses = integrate_twists([(1.0, 0.0, 0.0), (0.0, 0.0, math.pi / 2), (1.0, 0.0, 0.0)], dt=1.0)
    assert np.allclose(poses, [[0, 0, 0], [1, 0, 0], [1, 0, math.pi / 2], [1, 1, math.pi / 2]])
    assert rate_mismatch(30.0, 1 / 30) is None and rate_mismatch(26.0, 1 / 30) is None
    assert "trained at 10.0 Hz" in rate_mismatch(30.0, 0.1)
    assert rate_mismatch(30.0, None) is None and rate_mismatch(0.0, 0.1) is None


def test_a_joint_plan_becomes_a_joint_trajectory_timed_in_control_steps():
    import rclpy
    from rclpy.lifecycle import LifecycleNode

    from moejepa_ros.ros.debug_view import DebugView

    vals = {"action_type": "trajectory_msgs/msg/JointTrajectory", "joint_names": ["shoulder", "elbow"]}
    vals.update({"command_frame_id": "arm_base", "debug.image_rate": 1.0, "twist_fields": []})
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = LifecycleNode("debug_view_test", context=ctx)  # the debug topics are lifecycle publishers
        view = DebugView(node, vals)
        plan = np.float32([[0.1, -0.2], [0.3, -0.4], [0.5, -0.6]])
        msg = view.trajectory(7_500_000_000, 0.05, "arm_base", plan)
        assert node.count_publishers("/debug_view_test/plan_trajectory") == 1
        assert node.count_publishers("/debug_view_test/plan_path") == 0
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    assert (stamp_ns(msg.header.stamp), msg.header.frame_id, list(msg.joint_names)) == (
        7_500_000_000,
        "arm_base",
        ["shoulder", "elbow"],
    )
    assert [stamp_ns(p.time_from_start) for p in msg.points] == [50_000_000, 100_000_000, 150_000_000]
    assert np.allclose([list(p.positions) for p in msg.points], plan)


def test_bringup_hands_its_nodes_a_namespace_proof_params_file():
    from moejepa_ros.ros import bringup
    from moejepa_ros.ros.launch_common import config_dir

    procs = bringup.build_processes(Path(config_dir()) / "sim_demo.yaml", ros_args=["--ros-args", "-r", "__ns:=/r1"])
    for _, p in procs:
        doc = yaml.safe_load(Path(p.cmd[p.cmd.index("--params-file") + 1]).read_text())
        assert sorted(doc) == ["/**/planner_node", "/**/sim_node"]
