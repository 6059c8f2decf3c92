"""planner_node as a real process over DDS: control, live parameters, safety, lifecycle.

One planner process (autostart, TwistStamped so stamps can be checked) is shared by the
control / parameter / safety tests; the lifecycle test starts its own with autostart off.
Every wait is for a message, a match or a service, never a fixed sleep.
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray

from moejepa_ros import codecs
from moejepa_ros.ros.messages import IMAGE_PUB_QOS, msg_to_plan, stamp_ns
from moejepa_ros.ros.node_process import NodeProcess
from moejepa_ros.ros.probe import Probe, wait_until
from testing.ros_harness import diag_values, is_zero, write_params

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

LOW, HIGH = [-0.5, -1.0], [0.5, 1.0]


def tiny_checkpoint(path):
    """An untrained, very small world model: the node's behaviour, not its skill, is under test."""
    from moejepa_ros.model import save_checkpoint
    from testing.models import tiny_model

    save_checkpoint(path, tiny_model(), {"action_low": LOW, "action_high": HIGH})
    return path


def planner_params(ckpt, **over):
    p = {
        "checkpoint": str(ckpt),
        "action_type": "twist_stamped",
        "twist_fields": ["linear.x", "angular.z"],
        "control_rate": 30.0,
        "camera_timeout": 0.5,
        "diagnostics_period": 0.2,
        "planner.samples": 32,
        "planner.horizon": 3,
        "planner.iterations": 2,
        "planner.elites": 8,
        "objectives.goal.enabled": True,  # as config/planner.yaml: the goal term joins once a goal image arrives
    }
    p.update(over)
    return p


def start_planner(d, ckpt, name="planner_node", remaps=None, env=None, **over) -> NodeProcess:
    """A planner_node process called `name` with `planner_params(ckpt, **over)`, its log in `d`."""
    params = write_params(d / f"{name}.yaml", {name: planner_params(ckpt, **over)})
    return NodeProcess("planner_node", params, name=name, remaps=remaps, log_path=d / f"{name}.log", env=env).start()


def frame(i: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def image_msg(i: int, stamp: int, size: int = 64) -> Image:
    return codecs.make_image(Image, frame(i, size), "rgb8", stamp, "cam_optical")


def feed(pub, n: int, rate: float = 30.0, start: int = 0, size: int = 64) -> list[int]:
    """Publish n frames at `rate` (pacing only); returns their stamps (ns)."""
    stamps = []
    t_next = time.monotonic()
    for i in range(start, start + n):
        stamp = 1_000_000_000 + i * 33_000_000
        pub.publish(image_msg(i, stamp, size))
        stamps.append(stamp)
        t_next += 1.0 / rate
        time.sleep(max(0.0, t_next - time.monotonic()))
    return stamps


def stream(pub, stop: threading.Event, rate: float = 30.0) -> None:
    """Publish frames at `rate` until `stop` is set (a camera running beside the test)."""
    i = 0
    while not stop.is_set():
        pub.publish(image_msg(i, 1_000_000_000 + i * 33_000_000))
        i += 1
        stop.wait(1.0 / rate)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="module")
def probe():
    p = Probe("test_planner_probe")
    yield p
    p.close()


@pytest.fixture(scope="module")
def planner(ckpt, tmp_path_factory, probe):
    d = tmp_path_factory.mktemp("planner")
    proc = start_planner(d, ckpt)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def io(probe, planner):
    """Publisher + inboxes wired to the shared planner, after discovery."""
    pub = probe.publisher(Image, "image", IMAGE_PUB_QOS)
    actions = probe.subscribe(TwistStamped, "action")
    plans = probe.subscribe(Float32MultiArray, "planner_node/plan")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    try:
        probe.wait_for_subscribers(pub, 1, timeout=30)
        actions.wait(1, timeout=30)  # the node is up: it sends zero commands while it has no image
    except TimeoutError:
        pytest.fail("planner_node did not come up:\n" + planner.output()[-3000:])
    return pub, actions, plans, diags


def test_plans_on_incoming_images_with_their_stamps(io, planner):
    pub, actions, plans, diags = io
    actions.clear()
    plans.clear()
    stamps = feed(pub, 45)
    got = actions.wait(5, timeout=20, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))
    for m in got:  # outputs carry the input image's stamp, command_frame_id (not the camera's), and the bounds
        assert m.header.frame_id == "base_link"
        assert LOW[0] <= m.twist.linear.x <= HIGH[0] and LOW[1] <= m.twist.angular.z <= HIGH[1]
        assert m.twist.linear.y == 0.0
    plan_msg = plans.wait(1, timeout=10)[-1]
    acts, cost = msg_to_plan(plan_msg)
    assert acts.shape == (3, 2) and np.isfinite(cost)
    d = diag_values(diags.wait(1, timeout=10, pred=lambda a: diag_values(a).get("commands", "0") != "0")[-1])
    for key in (
        "latency_ms_p50",
        "latency_ms_p99",
        "input_rate_hz",
        "control_rate_hz",
        "device",
        "checkpoint_sha256",
        "expert_load",
        "frames_dropped",
    ):
        assert key in d, f"/diagnostics lacks {key}: {sorted(d)}"
    assert d["device"] == "cpu" and len(d["checkpoint_sha256"]) == 64
    assert planner.alive()


def test_live_parameters_apply_and_invalid_ones_are_rejected(io, probe, planner):
    pub, actions, plans, diags = io
    [ok] = probe.set_parameters("/planner_node", {"planner.samples": 16, "planner.elites": 4})[:1]
    assert ok.successful, ok.reason
    assert probe.get_parameters("/planner_node", ["planner.samples"])["planner.samples"] == 16
    # The change reaches the running planner without a restart (diagnostics report it).
    feed(pub, 10)
    diags.wait(1, timeout=10, pred=lambda a: "samples=16" in diag_values(a).get("planner", ""))

    [zero] = probe.set_parameters("/planner_node", {"planner.samples": 0})
    assert not zero.successful and "planner.samples" in zero.reason, zero.reason
    [elites] = probe.set_parameters("/planner_node", {"planner.elites": 64})  # > samples: PlannerConfig rule
    assert not elites.successful and "elites" in elites.reason and "samples" in elites.reason, elites.reason
    [method] = probe.set_parameters("/planner_node", {"planner.method": "bogus"})
    assert not method.successful and "bogus" in method.reason
    [swap] = probe.set_parameters("/planner_node", {"checkpoint": "/elsewhere.safetensors"})  # only unconfigured
    assert not swap.successful and "checkpoint applies at configure" in swap.reason, swap.reason
    [ro] = probe.set_parameters("/planner_node", {"num_threads": 2})
    assert not ro.successful and "read-only" in ro.reason
    [bounds] = probe.set_parameters("/planner_node", {"action_low": [1.0, 1.0]})
    assert not bounds.successful and "action_low" in bounds.reason
    [metric] = probe.set_parameters("/planner_node", {"objectives.goal.metric": "learned"})  # no goal head here
    assert not metric.successful and "goal_distance" in metric.reason, metric.reason
    [cos] = probe.set_parameters("/planner_node", {"objectives.goal.metric": "cosine"})
    assert cos.successful, cos.reason
    [stall] = probe.set_parameters("/planner_node", {"planner.stall_steps": 5})  # the recovery reports itself
    assert stall.successful, stall.reason
    feed(pub, 10)
    diags.wait(1, timeout=10, pred=lambda a: diag_values(a).get("stall_recovery") in ("True", "False"))
    [bad_stall] = probe.set_parameters("/planner_node", {"planner.stall_weight": -1.0})
    assert not bad_stall.successful and "stall_weight" in bad_stall.reason, bad_stall.reason
    assert probe.get_parameters("/planner_node", ["planner.samples"])["planner.samples"] == 16
    assert planner.alive()


def test_bound_like_parameters_are_rejected_with_a_reason_or_in_force(io, probe, planner):
    """Accepted means applied (issue 22): what the apply step would refuse, the on-set callback refuses."""
    from moejepa_ros.ros.params import PLANNER_NODE_SPECS

    pub, actions, plans, diags = io
    node = "/planner_node"
    for name, value, why in (
        ("action_low", [-1e308, -1e308], "finite in float32"),  # finite doubles, -inf in float32
        ("action_high", [1e308, 1e308], "finite in float32"),
        ("action_low", [float("nan"), -1.0], "finite"),
        ("action_low", [-0.5, -1.0, 0.0], "need 2 values"),  # the checkpoint's action_dim is 2
        ("action_high", [0.5], "need 2 values"),
        ("action_low", [1.0, 2.0], "must be < action_high"),  # against the checkpoint's high bound
    ):
        [r] = probe.set_parameters(node, {name: value})
        assert not r.successful and why in r.reason, (name, value, r.reason)
    # unchanged: both still the checkpoint's
    got = probe.get_parameters(node, ["action_low", "action_high"])
    assert got.get("action_low") is None and got.get("action_high") is None, got
    for spec in PLANNER_NODE_SPECS:  # every declared range is enforced by the parameter service
        if spec.read_only or spec.high is None or isinstance(spec.default, bool):
            continue
        [r] = probe.set_parameters(node, {spec.name: type(spec.default)(spec.high) * 2 + 1})
        assert not r.successful, f"{spec.name} accepted a value above its range"

    # Bounds wider than the checkpoint's (trained) range are applied, and /diagnostics warns.
    wide = probe.set_parameters(node, {"action_low": [-1e3, -1e3], "action_high": [1e3, 1e3]})
    assert all(r.successful for r in wide), [r.reason for r in wide]
    feed(pub, 10)
    diags.wait(1, timeout=10, pred=lambda a: "range the model was trained on" in a.status[0].message)
    back = probe.set_parameters(node, {"action_low": LOW, "action_high": HIGH})
    assert all(r.successful for r in back), [r.reason for r in back]
    n = len(diags)
    feed(pub, 10)
    wait_until(lambda: any("trained on" not in a.status[0].message for a in diags.msgs[n:]), 10, "warning cleared")
    d = diag_values(diags.msgs[-1])
    assert d["last_command"] in ("planned", "planned zero") or d["last_command"].startswith("safety zero"), d
    assert {"safety_zero_commands", "planned_zero_commands"} <= set(d)


def test_stalled_camera_gives_the_zero_command_within_the_timeout(io, planner):
    pub, actions, plans, diags = io
    stamps = set(feed(pub, 20))
    actions.wait(1, timeout=10, pred=lambda m: stamp_ns(m.header.stamp) in stamps)
    t_stop = time.monotonic()
    n0 = len(actions)
    wait_until(lambda: any(is_zero(m) for m in actions.msgs[n0:]), timeout=10, what="a zero command")
    i = next(i for i in range(n0, len(actions.msgs)) if is_zero(actions.msgs[i]))
    # camera_timeout is 0.5 s; allow generous scheduling slack on a loaded 2-core machine.
    assert actions.times[i] - t_stop < 0.5 + 2.0
    diags.wait(1, timeout=10, pred=lambda a: a.status[0].level == b"\x01" and "no image" in a.status[0].message)
    assert planner.alive()


_ENCODINGS = st.sampled_from(["rgb8", "bgr8", "mono8", "rgba8", "16UC1", "32FC1", "yuv422", ""])


@st.composite
def hostile_images(draw):
    m = Image()
    m.height = draw(st.integers(0, 300))
    m.width = draw(st.integers(0, 300))
    m.encoding = draw(_ENCODINGS)
    m.is_bigendian = draw(st.integers(0, 255))
    m.step = draw(st.one_of(st.just(m.width * 3), st.integers(0, 2000)))
    n = draw(st.one_of(st.just(m.height * m.step), st.integers(0, 5000)))
    m.data = draw(st.binary(min_size=min(n, 64), max_size=min(n, 64))) * max(1, n // 64) if n else b""
    return m


def test_malformed_images_never_stop_the_node(io, probe, planner):
    pub, actions, plans, diags = io

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(hostile_images())
    def publish_hostile(msg):
        pub.publish(msg)

    publish_hostile()
    assert planner.alive(), planner.output()[-3000:]
    stamps = set(feed(pub, 30, start=500))
    actions.wait(1, timeout=15, pred=lambda m: stamp_ns(m.header.stamp) in stamps)
    diags.wait(1, timeout=10, pred=lambda a: int(diag_values(a).get("malformed_images", "0")) > 0)
    assert planner.alive()


def test_large_images_are_resized_and_planned_on(io, planner):
    pub, actions, plans, diags = io
    stamps = set(feed(pub, 15, start=900, size=240))
    actions.wait(1, timeout=15, pred=lambda m: stamp_ns(m.header.stamp) in stamps)


# ------------------------------------------------------------------------ lifecycle
def test_lifecycle_transitions(ckpt, tmp_path, probe):
    node = "/lc_planner"
    proc = start_planner(tmp_path, ckpt, "lc_planner", {"image": "lc/image", "action": "lc/action"}, autostart=False)
    try:
        pub = probe.publisher(Image, "lc/image", IMAGE_PUB_QOS)
        actions = probe.subscribe(TwistStamped, "lc/action")
        assert probe.lifecycle_state(node, timeout=30) == "unconfigured"
        assert probe.change_state(node, Transition.TRANSITION_CONFIGURE), proc.output()[-2000:]
        assert probe.lifecycle_state(node) == "inactive"
        probe.wait_for_subscribers(pub, 1, timeout=20)
        feed(pub, 10)
        assert len(actions) == 0, "an inactive node must not command"

        assert probe.change_state(node, Transition.TRANSITION_ACTIVATE)
        assert probe.lifecycle_state(node) == "active"
        stamps = set(feed(pub, 20, start=100))
        actions.wait(1, timeout=15, pred=lambda m: stamp_ns(m.header.stamp) in stamps)

        n0 = len(actions)
        assert probe.change_state(node, Transition.TRANSITION_DEACTIVATE)
        assert probe.lifecycle_state(node) == "inactive"
        wait_until(lambda: any(is_zero(m) for m in actions.msgs[n0:]), 10, "the zero command on deactivate")

        assert probe.change_state(node, Transition.TRANSITION_CLEANUP)
        assert probe.lifecycle_state(node) == "unconfigured"
        assert probe.change_state(node, Transition.TRANSITION_CONFIGURE)  # the model loads again
        assert probe.change_state(node, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) is False  # wrong state
        assert probe.change_state(node, Transition.TRANSITION_INACTIVE_SHUTDOWN)
        proc.proc.wait(20)  # finalized: the process exits by itself
        assert proc.proc.returncode == 0, proc.output()[-2000:]
    finally:
        proc.stop()


def test_bad_checkpoint_fails_configure_with_a_clear_message(tmp_path):
    proc = start_planner(tmp_path, tmp_path / "missing.safetensors")
    try:
        proc.proc.wait(60)
        assert proc.proc.returncode == 1
        assert "missing.safetensors" in proc.output() and "does not exist" in proc.output()
    finally:
        proc.stop()


def test_an_encoder_precision_the_device_lacks_fails_configure_with_a_clear_message(ckpt, tmp_path):
    proc = start_planner(tmp_path, ckpt, "fp16_planner", device="cpu", encoder_precision="fp16")
    try:
        proc.proc.wait(60)
        assert proc.proc.returncode == 1
        assert "encoder_precision='fp16' needs a cuda device, not 'cpu'" in proc.output()
    finally:
        proc.stop()


def test_a_depth_camera_decodes_with_the_checkpoints_range_and_an_override_warns(tmp_path, probe):
    from moejepa_ros.model import save_checkpoint
    from testing.models import tiny_model

    model = tiny_model()
    pre = {**model.preprocessing, "depth_range": [0.3, 5.0]}
    ckpt = save_checkpoint(
        tmp_path / "depth.safetensors", model, {"action_low": LOW, "action_high": HIGH, "preprocessing": pre}
    )
    remaps = {"image": "depth/image", "action": "depth/action"}
    proc = start_planner(tmp_path, ckpt, "depth_planner", remaps, depth_range=[0.0, 8.0])
    try:
        pub = probe.publisher(Image, "depth/image", IMAGE_PUB_QOS)
        actions = probe.subscribe(TwistStamped, "depth/action")
        probe.wait_for_subscribers(pub, 1, timeout=30)
        actions.wait(1, timeout=30)  # the node is up (zero commands while it has no image), so no frame is early
        mm = np.random.default_rng(0).integers(0, 9000, (64, 64), dtype=np.uint16)
        stamps = []
        for i in range(20):
            stamps.append(1_000_000_000 + i * 33_000_000)
            pub.publish(codecs.make_image(Image, mm, "16UC1", stamps[-1], "depth_optical"))
            time.sleep(1 / 30)
        actions.wait(1, timeout=15, pred=lambda m: stamp_ns(m.header.stamp) in set(stamps))
        assert "depth_range=[0.0, 8.0] differs from the checkpoint's [0.3, 5.0]" in proc.output()
    finally:
        proc.stop()
    bad = start_planner(tmp_path, ckpt, "bad_range_planner", depth_range=[5.0, 1.0])
    try:
        bad.proc.wait(60)
        assert bad.proc.returncode == 1
        assert "depth_range=[5.0, 1.0] must be [lo, hi], finite with hi > lo" in bad.output()
    finally:
        bad.stop()


def test_compressed_transport_multiarray_commands_and_sim_time(ckpt, tmp_path, probe):
    """image_transport=compressed, Float32MultiArray commands, and use_sim_time following /clock."""
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CompressedImage

    over = {"image_transport": "compressed", "action_type": "float32_multi_array", "use_sim_time": True}
    remaps = {"image/compressed": "c/image/compressed", "action": "c/action"}
    proc = start_planner(tmp_path, ckpt, "c_planner", remaps, **over)
    try:
        pub = probe.publisher(CompressedImage, "c/image/compressed", IMAGE_PUB_QOS)
        clock = probe.publisher(Clock, "/clock", 10)
        actions = probe.subscribe(Float32MultiArray, "c/action")
        diags = probe.subscribe(DiagnosticArray, "/diagnostics")
        probe.wait_for_subscribers(pub, 1, timeout=30)
        probe.wait_for_subscribers(clock, 1, timeout=30)
        # before the first /clock, /diagnostics runs on wall time and says what it waits for
        diags.wait(
            1,
            timeout=15,
            pred=lambda a: "c_planner" in a.status[0].name and "waiting for /clock" in a.status[0].message,
        )
        sim_now = 1000 * 1_000_000_000
        for i in range(30):
            tick = Clock()
            tick.clock.sec, tick.clock.nanosec = divmod(sim_now + i * 33_000_000, 1_000_000_000)
            clock.publish(tick)
            pub.publish(codecs.make_compressed(CompressedImage, frame(i), "jpeg", 90, sim_now + i * 33_000_000, "cam"))
            time.sleep(1 / 30)
        got = actions.wait(3, timeout=15, pred=lambda m: len(m.data) == 2 and any(v != 0.0 for v in m.data))
        assert all(LOW[i] <= m.data[i] <= HIGH[i] for m in got for i in range(2))
        mine = diags.wait(
            1,
            timeout=10,
            pred=lambda a: (
                "c_planner" in a.status[0].name and abs(stamp_ns(a.header.stamp) - sim_now) < 60 * 1_000_000_000
            ),
        )
        assert mine, "diagnostics are not stamped with sim time"
    finally:
        proc.stop()


# ------------------------------------------------------------------------ objective plugins
# One file is a whole objective; the node imports it by module name (`objective_plugins`).
TOY_OBJECTIVE = '''
"""A toy objective for the plugin test: prefer small actions, with its own exponent."""
from moejepa_ros.planning.objectives import Objective, Option


class ToyObjective(Objective):
    """sum_t ||a_t||_p^p: prefer small actions."""

    name = "toy"
    enabled_default = True
    weight_default = 0.5
    options = {"power": Option(2.0, "exponent p of the toy action cost", low=1.0, high=4.0)}

    def __call__(self, r):
        return r.actions.abs().pow(self.power).sum((1, 2))
'''


def test_an_objective_plugin_file_becomes_live_parameters(ckpt, tmp_path, probe):
    import os

    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import DescribeParameters, ListParameters

    (tmp_path / "toy_node_objective.py").write_text(TOY_OBJECTIVE)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    node = "/p_planner"
    remaps = {"image": "p/image", "action": "p/action"}
    proc = start_planner(tmp_path, ckpt, "p_planner", remaps, env, objective_plugins=["toy_node_objective"])
    try:
        names = probe.call(
            ListParameters, f"{node}/list_parameters", ListParameters.Request(prefixes=["objectives"]), timeout=30
        ).result.names
        assert {
            "objectives.toy.enabled",
            "objectives.toy.weight",
            "objectives.toy.power",
            "objectives.reward.terminal_value",
            "objectives.cost.every_step",
        } <= set(names), proc.output()[-2000:]
        got = probe.get_parameters(node, ["objectives.toy.enabled", "objectives.toy.weight", "objectives.toy.power"])
        assert got == {"objectives.toy.enabled": True, "objectives.toy.weight": 0.5, "objectives.toy.power": 2.0}
        req = DescribeParameters.Request(names=["objectives.toy.power", "objectives.toy.weight"])
        power, weight = probe.call(DescribeParameters, f"{node}/describe_parameters", req).descriptors
        assert power.description == "exponent p of the toy action cost" and power.type == ParameterType.PARAMETER_DOUBLE
        assert (power.floating_point_range[0].from_value, power.floating_point_range[0].to_value) == (1.0, 4.0)
        assert weight.description == "weight of the toy objective"

        [ok] = probe.set_parameters(node, {"objectives.toy.power": 3.0})
        assert ok.successful, ok.reason
        assert probe.get_parameters(node, ["objectives.toy.power"]) == {"objectives.toy.power": 3.0}
        [high] = probe.set_parameters(node, {"objectives.toy.power": 9.0})
        assert not high.successful and "objectives.toy.power" in high.reason, high.reason
        assert probe.get_parameters(node, ["objectives.toy.power"]) == {"objectives.toy.power": 3.0}

        pub = probe.publisher(Image, "p/image", IMAGE_PUB_QOS)  # the node plans with the toy term in its sum
        actions = probe.subscribe(TwistStamped, "p/action")
        probe.wait_for_subscribers(pub, 1, timeout=30)
        stamps = set(feed(pub, 20, start=300))
        actions.wait(1, timeout=15, pred=lambda m: stamp_ns(m.header.stamp) in stamps)
        assert proc.alive()
    finally:
        proc.stop()


def test_an_objective_plugin_that_cannot_be_imported_stops_the_node_with_its_name(ckpt, tmp_path):
    proc = start_planner(tmp_path, ckpt, objective_plugins=["no_such_objective_module"])
    try:
        proc.proc.wait(60)
        assert proc.proc.returncode == 1
        assert "objective plugin 'no_such_objective_module' failed to import" in proc.output()
    finally:
        proc.stop()


# ------------------------------------------------------------------------ goal image QoS
@pytest.mark.parametrize(
    "latched, metric", [(False, "l2"), (True, "l2"), (False, "pose")], ids=["default_qos", "latched", "metric_pose"]
)
def test_a_goal_image_from_a_default_or_latched_publisher_starts_goal_planning(ckpt, tmp_path, probe, latched, metric):
    """Goal-only objectives idle until a goal image arrives; `ros2 topic pub` (reliable, volatile) and a
    latched publisher both deliver it (REP-2003: inputs a person may publish by hand accept default QoS).
    With the goal metric pose (a checkpoint with the relative-pose parts) the node plans in pose space."""
    from moejepa_ros.ros.messages import LATCHED_QOS

    if metric == "pose":
        from moejepa_ros.model import save_checkpoint
        from testing.models import tiny_model

        ckpt = tmp_path / "pose.safetensors"
        parts = {"channels": [8, 8, 8, 8], "hidden": 16, "motion_hidden": 16}
        save_checkpoint(ckpt, tiny_model(relative_pose=parts), {"action_low": LOW, "action_high": HIGH})
    ns = f"g{int(latched)}{metric}"
    remaps = {"image": f"{ns}/image", "goal_image": f"{ns}/goal_image", "action": f"{ns}/action"}
    name = f"{ns}_planner"
    over = {"objectives.reward.enabled": False, "objectives.goal.metric": metric}
    proc = start_planner(tmp_path, ckpt, name, remaps, **over)
    try:
        mine = f"/{name}: control"
        diags = probe.subscribe(DiagnosticArray, "/diagnostics")
        images = probe.publisher(Image, f"{ns}/image", IMAGE_PUB_QOS)
        goals = probe.publisher(Image, f"{ns}/goal_image", LATCHED_QOS if latched else 10)
        probe.wait_for_subscribers(images, 1, timeout=30)
        probe.wait_for_subscribers(goals, 1, timeout=30)
        stop = threading.Event()
        camera = threading.Thread(target=lambda: stream(images, stop), daemon=True)
        camera.start()  # a live camera for the whole test, so no check races a stale-camera status
        try:
            diags.wait(1, timeout=30, pred=lambda a: a.status[0].name == mine and "goal" in a.status[0].message)
            diags.clear()  # only statuses from after the goal count (an OK one from start-up would too)
            goals.publish(image_msg(99, 1_000_000_000))
            planning = diags.wait(
                1,
                timeout=30,
                pred=lambda a: (
                    a.status[0].name == mine and a.status[0].level == b"\x00" and "goal" not in a.status[0].message
                ),
            )
        finally:
            stop.set()
            camera.join()
        planning = planning[-1]
        assert "goal" not in planning.status[0].message, planning.status[0].message
        assert diag_values(planning).get("goal_images") == "1"  # through both subscriptions, it counts once
    finally:
        proc.stop()


def test_no_progress_toward_an_unreachable_goal_turns_diagnostics_warn(ckpt, tmp_path, probe):
    """A camera that shows one frame while the goal is another: the start latent never moves, so the goal
    distance never drops and after `goal_progress_window` replans /diagnostics says so, with the numbers."""
    ns = "np"
    remaps = {"image": f"{ns}/image", "goal_image": f"{ns}/goal_image", "action": f"{ns}/action"}
    name = f"{ns}_planner"
    over = {"objectives.reward.enabled": False, "goal_progress_window": 5, "planner.stall_min_distance": 0.0}
    proc = start_planner(tmp_path, ckpt, name, remaps, **over)
    try:
        mine = f"/{name}: control"
        diags = probe.subscribe(DiagnosticArray, "/diagnostics")
        images = probe.publisher(Image, f"{ns}/image", IMAGE_PUB_QOS)
        goals = probe.publisher(Image, f"{ns}/goal_image", 10)
        probe.wait_for_subscribers(images, 1, timeout=30)
        probe.wait_for_subscribers(goals, 1, timeout=30)
        stop = threading.Event()

        def still_camera():  # the same picture, new stamps: a robot that does not move
            i = 0
            while not stop.is_set():
                images.publish(image_msg(7, 1_000_000_000 + i * 33_000_000))
                i += 1
                stop.wait(1 / 30)

        camera = threading.Thread(target=still_camera, daemon=True)
        camera.start()
        try:
            diags.wait(1, timeout=30, pred=lambda a: a.status[0].name == mine and "goal" in a.status[0].message)
            goals.publish(image_msg(99, 1_000_000_000))
            warn = diags.wait(
                1,
                timeout=30,
                pred=lambda a: a.status[0].name == mine and "no progress toward the goal" in a.status[0].message,
            )[-1]
        finally:
            stop.set()
            camera.join()
        assert warn.status[0].level == b"\x01", warn.status[0].message
        d = diag_values(warn)
        assert int(d["replans_without_progress"]) >= 5
        assert float(d["goal_distance"]) > 0 and float(d["goal_distance_best"]) <= float(d["goal_distance"])
        assert re.fullmatch(
            r"no progress toward the goal for \d+ replans \(distance \S+, best \S+\)", warn.status[0].message
        )
        assert proc.alive()
    finally:
        proc.stop()
