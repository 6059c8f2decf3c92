"""Every way planner_node stops ends with the zero command on `action` (issue 22), on real processes.

Stops: SIGINT / SIGTERM to the node process, SIGINT / SIGTERM to a moejepa-bringup process, the
lifecycle shutdown and deactivate transitions, and an exception in the planning thread. Each
repetition streams images until the node has published a planned (non-zero) command, stops it while
the images keep coming, and checks that the last message on `action` is exactly zero.

Repetitions per stop kind: MOEJEPA_STOP_REPS (default 2, so `make test` stays quick on 2 cores; the
issue's acceptance run is `MOEJEPA_STOP_REPS=20 pytest test/test_ros_safe_stop.py`). The processes of
one test start in parallel (six at a time), each on its own topics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray
from test_ros_planner_node import diag_values, image_msg, is_zero, planner_params, start_planner, tiny_checkpoint

from moejepa_ros.ros.messages import IMAGE_PUB_QOS, msg_to_plan
from moejepa_ros.ros.node_process import child_env
from moejepa_ros.ros.probe import Probe, wait_until
from testing.ros_harness import write_params

REPS = int(os.environ.get("MOEJEPA_STOP_REPS", "2"))
BATCH = 6  # processes started together
pytestmark = [pytest.mark.ros, pytest.mark.timeout(120 + 30 * REPS)]

# An objective whose plans are never zero (it pulls every action towards 0.25) and that raises inside
# the planning thread while `explode` is 1: the node's behaviour under a failing plan, on demand.
PROBE_OBJECTIVE = '''
"""Test objective: pull actions towards 0.25; raise while `explode` is 1."""
from moejepa_ros.planning.objectives import Objective, Option


class StopProbe(Objective):
    """sum_t ||a_t - 0.25||^2, or RuntimeError while explode = 1."""

    name = "stopprobe"
    enabled_default = True
    options = {"explode": Option(0.0, "1 = raise inside the plan", low=0.0, high=1.0)}

    def __call__(self, r):
        if self.explode:
            raise RuntimeError("stopprobe exploded")
        return (r.actions - 0.25).pow(2).sum((1, 2))
'''


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    d = tmp_path_factory.mktemp("plugin")
    (d / "stopprobe_objective.py").write_text(PROBE_OBJECTIVE)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(d), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture(scope="module")
def probe():
    p = Probe("test_safe_stop_probe")
    yield p
    p.close()


def node_params(ckpt, **over):
    """No goal objective (it would idle, commanding zero, until a goal image); the probe objective on."""
    return planner_params(
        ckpt, **{"objectives.goal.enabled": False, "objective_plugins": ["stopprobe_objective"]}, **over
    )


class Rig:
    """One planner (a node process, or a bringup process running one) on its own `<tag>/image`, `<tag>/action`."""

    def __init__(self, probe: Probe, tag: str, proc, kind: str, log=None):
        self.tag, self.proc, self.kind, self.log = tag, proc, kind, log
        self.pub = probe.publisher(Image, f"{tag}/image", IMAGE_PUB_QOS)
        self.actions = probe.subscribe(TwistStamped, f"{tag}/action")

    def popen(self) -> subprocess.Popen:
        return self.proc if isinstance(self.proc, subprocess.Popen) else self.proc.proc

    def output(self) -> str:
        return self.proc.output() if self.log is None else self.log.read_text(errors="replace")

    def kill(self) -> None:
        if hasattr(self.proc, "stop"):
            self.proc.stop()
        elif self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_node_rig(d, ckpt, probe, env, tag: str, kind: str) -> Rig:
    remaps = {"image": f"{tag}/image", "action": f"{tag}/action"}
    return Rig(probe, tag, start_planner(d, ckpt, tag, remaps, env, **node_params(ckpt)), kind)


def start_bringup_rig(d, ckpt, probe, env, tag: str, kind: str) -> Rig:
    """moejepa-bringup running one planner, in its own process group (as a terminal runs it)."""
    params = write_params(d / f"{tag}.yaml", {tag: node_params(ckpt)})
    cmd = [sys.executable, "-m", "moejepa_ros.ros.bringup", str(params), "--log-dir", str(d / f"{tag}_logs")]
    cmd += ["--ros-args", "-r", f"image:={tag}/image", "-r", f"action:={tag}/action"]
    log = d / f"{tag}.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=child_env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Rig(probe, tag, proc, kind, log)


def stream_to(rigs: list[Rig], stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        for r in rigs:
            r.pub.publish(image_msg(i, 1_000_000_000 + i * 33_000_000))
        i += 1
        stop.wait(1 / 30)


def wait_planning(r: Rig, timeout: float = 90.0) -> None:
    """Until `r` has published a planned, non-zero command after this call."""
    n0 = len(r.actions)

    def planned() -> bool:
        return any(not is_zero(m) for m in r.actions.msgs[n0:])

    try:
        wait_until(lambda: planned() or r.popen().poll() is not None, timeout, f"{r.tag} planning")
    except TimeoutError:
        pass
    if not planned():
        pytest.fail(f"{r.tag} never planned a non-zero command:\n{r.output()[-3000:]}")


def last_is_zero(r: Rig, timeout: float = 5.0) -> bool:
    """The last message on `action` is the zero command (delivery may trail the process's exit)."""
    try:
        wait_until(lambda: len(r.actions) > 0 and is_zero(r.actions.msgs[-1]), timeout, f"{r.tag}: zero last")
    except TimeoutError:
        return False
    return True


STOPS = {
    "sigint": lambda probe, r: os.killpg(r.popen().pid, signal.SIGINT),
    "sigterm": lambda probe, r: os.killpg(r.popen().pid, signal.SIGTERM),
    "shutdown": lambda probe, r: probe.change_state(f"/{r.tag}", Transition.TRANSITION_ACTIVE_SHUTDOWN),
}


def run_stops(rigs: list[Rig], probe: Probe) -> None:
    """Plan, stop each rig its way while images keep coming, then check each one's last command."""
    stop_stream = threading.Event()
    streamer = threading.Thread(target=stream_to, args=(rigs, stop_stream), daemon=True)
    streamer.start()
    try:
        for r in rigs:
            wait_planning(r)
        for r in rigs:
            STOPS[r.kind](probe, r)
        for r in rigs:
            r.popen().wait(30)
    finally:
        stop_stream.set()
        streamer.join()
        for r in rigs:
            r.kill()
    failed = [f"{r.tag} ({r.kind}, exit {r.popen().returncode})" for r in rigs if not last_is_zero(r)]
    assert not failed, f"last command not zero after the stop: {failed}"
    bad_exit = [f"{r.tag}: {r.popen().returncode}" for r in rigs if r.popen().returncode != 0]
    assert not bad_exit, f"a stop is not a failure, every exit status should be 0: {bad_exit}"


def in_batches(start, specs: list[tuple[str, str]], probe: Probe) -> None:
    """Start BATCH rigs at a time (memory: one torch process each) and run their stops."""
    for b in range(0, len(specs), BATCH):
        run_stops([start(tag, kind) for tag, kind in specs[b : b + BATCH]], probe)


def test_signals_and_shutdown_end_with_the_zero_command(ckpt, plugin_env, probe, tmp_path):
    specs = [(f"stop_{kind}_{i}", kind) for i in range(REPS) for kind in STOPS]
    in_batches(lambda tag, kind: start_node_rig(tmp_path, ckpt, probe, plugin_env, tag, kind), specs, probe)


def test_signals_to_bringup_end_with_the_zero_command(ckpt, plugin_env, probe, tmp_path):
    specs = [(f"planner_bringup_{kind}_{i}", kind) for i in range(REPS) for kind in ("sigint", "sigterm")]
    in_batches(lambda tag, kind: start_bringup_rig(tmp_path, ckpt, probe, plugin_env, tag, kind), specs, probe)


def test_deactivate_and_a_failing_plan_end_with_the_zero_command(ckpt, plugin_env, probe, tmp_path):
    """One process, cycled: deactivate → zero last, activate → plans again; explode → zero while the
    plan raises, with ERROR on /diagnostics; defuse → plans again."""
    rig = start_node_rig(tmp_path, ckpt, probe, plugin_env, "stop_cycle", "deactivate")
    node = "/stop_cycle"
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    plans = probe.subscribe(Float32MultiArray, "/stop_cycle/plan")

    def mine(a: DiagnosticArray) -> bool:
        return a.status[0].name.startswith(node)

    def failing(a: DiagnosticArray) -> bool:
        st = a.status[0]
        return (
            st.level == b"\x02"
            and "control step failed" in st.message
            and diag_values(a)["last_command"].startswith("safety zero")
        )

    stop_stream = threading.Event()
    streamer = threading.Thread(target=stream_to, args=([rig], stop_stream), daemon=True)
    streamer.start()
    try:
        for i in range(REPS):
            wait_planning(rig)
            assert probe.change_state(node, Transition.TRANSITION_DEACTIVATE)
            assert last_is_zero(rig), f"deactivate {i}: last command {rig.actions.msgs[-1].twist}"
            assert probe.change_state(node, Transition.TRANSITION_ACTIVATE)
            wait_planning(rig)
            [ok] = probe.set_parameters(node, {"objectives.stopprobe.explode": 1.0})
            assert ok.successful, ok.reason
            n, d, k = len(rig.actions), len(diags), len(plans)
            wait_until(lambda: sum(is_zero(m) for m in rig.actions.msgs[n:]) >= 3, 20, "zero commands while failing")
            assert is_zero(rig.actions.msgs[-1]) and rig.proc.alive()
            wait_until(lambda: any(mine(a) and failing(a) for a in diags.msgs[d:]), 10, "ERROR on /diagnostics")
            wait_until(lambda: any(msg_to_plan(m)[0].shape[0] == 0 for m in plans.msgs[k:]), 10, "the empty plan")
            [ok] = probe.set_parameters(node, {"objectives.stopprobe.explode": 0.0})
            assert ok.successful, ok.reason
        assert "control step failed: RuntimeError" in rig.output() or "stopprobe exploded" in rig.output()
    finally:
        stop_stream.set()
        streamer.join()
        rig.kill()
