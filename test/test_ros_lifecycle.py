"""planner_node's lifecycle conventions over DDS: lifecycle publishers (an inactive node sends nothing, the
zero command on deactivate still goes out), a model swap between cleanup and configure without a restart,
and /diagnostics statuses with a hardware_id and diagnostic_updater's frequency / timestamp checks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import Image
from test_ros_planner_node import HIGH, LOW, diag_values, image_msg, is_zero, planner_params, start_planner

from moejepa_ros.ros.messages import IMAGE_PUB_QOS, stamp_ns
from moejepa_ros.ros.probe import Probe, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]


def save_tiny(path, **overrides):
    """A tiny untrained checkpoint; `overrides` change the model (e.g. its number of experts)."""
    from moejepa_ros.model import save_checkpoint
    from testing.models import tiny_model

    return save_checkpoint(path, tiny_model(**overrides), {"action_low": LOW, "action_high": HIGH})


@pytest.fixture(scope="module")
def probe():
    p = Probe("test_lifecycle_probe")
    yield p
    p.close()


def live_camera(pub, stop: threading.Event) -> None:
    """Frames stamped now, at 30 Hz, until `stop` (a camera with a synchronised clock)."""
    i = 0
    while not stop.is_set():
        pub.publish(image_msg(i, time.time_ns()))
        i += 1
        stop.wait(1 / 30)


def test_a_model_swap_between_cleanup_and_configure_and_the_topic_statuses(tmp_path, probe):
    from moejepa_ros.ros.planner_node import file_sha256

    model_a = save_tiny(tmp_path / "a.safetensors")
    model_b = save_tiny(tmp_path / "b.safetensors", num_experts=3)  # its expert_load has 3 entries
    name, node = "swap_planner", "/swap_planner"
    proc = start_planner(tmp_path, model_a, name, {"image": "swap/image", "action": "swap/action"}, autostart=False)
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    actions = probe.subscribe(TwistStamped, "swap/action")
    images = probe.publisher(Image, "swap/image", IMAGE_PUB_QOS)

    def mine(a: DiagnosticArray) -> bool:
        return a.status[0].name == f"{node}: control"

    def planning_with(ckpt, experts: int):
        """The newest status while planning with `ckpt`, its expert loads over `experts` experts."""

        def ok(a: DiagnosticArray) -> bool:
            d = diag_values(a)
            return (
                mine(a)
                and d.get("checkpoint_sha256") == file_sha256(ckpt)
                and len(d.get("expert_load", "").split()) == experts
            )

        return diags.wait(1, timeout=40, pred=ok)[-1]

    stop = threading.Event()
    camera = threading.Thread(target=live_camera, args=(images, stop), daemon=True)
    try:
        assert probe.lifecycle_state(node, timeout=30) == "unconfigured"
        assert probe.change_state(node, Transition.TRANSITION_CONFIGURE), proc.output()[-2000:]
        assert probe.change_state(node, Transition.TRANSITION_ACTIVATE)
        probe.wait_for_subscribers(images, 1, timeout=20)
        camera.start()
        arr = planning_with(model_a, 2)
        # every status: the node's fully qualified name as hardware_id; topic statuses with the standard checks
        assert [st.hardware_id for st in arr.status] == [node] * 3
        control, image, action = arr.status
        assert image.name == f"{node}: image topic status" and action.name == f"{node}: action topic status"
        kv_image, kv_action = ({kv.key: kv.value for kv in st.values} for st in (image, action))
        assert {"Actual frequency (Hz)", "Events in window", "Latest timestamp delay:"} <= set(kv_image)
        assert float(kv_image["Actual frequency (Hz)"]) > 0
        # stamped now: within diagnostic_updater's acceptable delay (the tiny checkpoint has no time step,
        # so any non-zero image rate is acceptable)
        assert image.level == b"\x00", (image.message, kv_image)
        assert float(kv_action["Maximum acceptable frequency (Hz)"]) == pytest.approx(30.0 * 1.2)

        [refused] = probe.set_parameters(node, {"checkpoint": str(model_b)})
        assert not refused.successful and "clean up the node first" in refused.reason, refused.reason
        assert probe.change_state(node, Transition.TRANSITION_DEACTIVATE)
        assert probe.change_state(node, Transition.TRANSITION_CLEANUP)
        [swapped] = probe.set_parameters(node, {"checkpoint": str(model_b)})
        assert swapped.successful, swapped.reason
        assert probe.change_state(node, Transition.TRANSITION_CONFIGURE), proc.output()[-2000:]
        assert probe.change_state(node, Transition.TRANSITION_ACTIVATE)
        n = len(actions)
        arr = planning_with(model_b, 3)  # model B plans: its hash and its three experts
        assert diag_values(arr)["checkpoint"] == str(model_b)
        wait_until(lambda: any(not is_zero(m) for m in actions.msgs[n:]), 20, "a planned command from model B")
        assert proc.alive() and f"loaded {model_b}" in proc.output()
    finally:
        stop.set()
        if camera.is_alive():
            camera.join()
        proc.stop()


def test_lifecycle_publishers_send_only_while_active(tmp_path, probe):
    """In-process node: what it publishes while inactive never arrives; the zero command on deactivate
    does. Reliable in-order delivery makes the check exact: a later message's arrival proves an earlier
    one was never sent."""
    import rclpy
    from rclpy.parameter import Parameter

    from moejepa_ros.ros.planner_node import PlannerNode

    ckpt = save_tiny(tmp_path / "tiny.safetensors")
    values = planner_params(ckpt, autostart=False, hardware_id="robot7_compute")
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = PlannerNode(
        "inproc_planner",
        context=ctx,
        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        cli_args=["--ros-args", "-r", "action:=inproc/action"],
    )
    actions = probe.subscribe(TwistStamped, "inproc/action")

    def send(stamp: int) -> None:
        node._publish_action(np.array([0.25, 0.5], np.float32), stamp)

    def arrived(stamp: int) -> list[TwistStamped]:
        return [m for m in actions.msgs if stamp_ns(m.header.stamp) == stamp]

    try:
        node.trigger_configure()
        assert node.configure_error is None, node.configure_error
        wait_until(lambda: node._pub_action.get_subscription_count() >= 1, 20, "the probe's subscription")
        send(111)  # inactive: dropped by the lifecycle publisher
        node.trigger_activate()
        send(222)
        actions.wait(1, timeout=10, pred=lambda m: stamp_ns(m.header.stamp) == 222)
        assert not arrived(111), "an inactive node published a command"

        node.trigger_deactivate()
        wait_until(lambda: is_zero(actions.msgs[-1]), 10, "the zero command on deactivate")
        n = len(actions)
        send(333)  # inactive again
        node.trigger_activate()
        send(444)
        actions.wait(1, timeout=10, pred=lambda m: stamp_ns(m.header.stamp) == 444)
        assert not arrived(333), "a deactivated node published a command"
        assert all(is_zero(m) or stamp_ns(m.header.stamp) == 444 for m in actions.msgs[n:])

        assert [node.diagnostics_status().hardware_id] + [st.hardware_id for st in node.topic_statuses()] == [
            "robot7_compute"
        ] * 3
    finally:
        node.stop()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
