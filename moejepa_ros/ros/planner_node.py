"""planner_node: camera frames in, latent-MPC commands out (a managed lifecycle node).

Lifecycle: configure loads the checkpoint onto `device` and builds the planner; activate
starts the planning thread; deactivate stops it and publishes the zero command once;
cleanup frees the model; shutdown joins the thread. With `autostart` (default) the node
configures and activates itself, so no lifecycle manager is needed. Outputs go through
lifecycle publishers, so an inactive node sends nothing (the zero command on deactivate goes
out before the publishers are deactivated). The `configure_only` parameters (`checkpoint`,
`device`, ...) can be set while unconfigured: cleanup, set, configure swaps the model in-process.

Topics (relative, remap freely): `image` (sensor_msgs/Image) or `image/compressed`, depth-1
best effort; optional `goal_image` (feeds the goal objective, if enabled) and `reward` (reported in
diagnostics); publishes `action` (the `action_type` command type, e.g. geometry_msgs/msg/Twist),
`~/plan` (Float32MultiArray: predicted cost + the planned actions, see messages.plan_to_msg)
and `/diagnostics` (the control status, then `image` and `action` topic statuses with
diagnostic_updater's frequency and timestamp checks, `topic_checks`; `hardware_id` on each).
Stamped outputs carry the input image's stamp and `command_frame_id` (default
base_link, REP-105), never the camera's frame. QoS: the profiles in `messages`, each overridable
with `qos_overrides.*` parameters (`qos`). With `debug.enabled`, the plan is also published for
RViz and plotters (`debug_view`). Timeouts (camera, goal) follow the node clock under
`use_sim_time`, so a paused simulator is not a stale camera. With a goal,
/diagnostics goes WARN when the goal distance has not dropped for `goal_progress_window` replans
(`planning.progress`, the count the stall recovery uses).

Threading (measured, see MACHINE-NOTES): planning as an rclpy timer callback on 2 cores
starved the image subscription (30 Hz → ~20 Hz, p99 165 ms); a plain thread running with
`torch.set_num_threads(1)` kept 30/30 Hz. So callbacks only decode + store frames, and one
plain thread encodes + plans on the newest stack; a slow plan skips stale frames, never
queues them. The thread is joined on deactivate/shutdown (a daemon thread inside torch at
interpreter exit aborts the process).

Trigger (`control_trigger`): `frame` (default) plans as soon as a new frame arrives but at
most `control_rate` times per second: lowest image→action latency, no plan on an unchanged
stack. `timer` plans every control period on the newest stack (fixed-rate MPC, adds up to one
period of latency). bench.micro.bench_node measures both side by side.
"""

from __future__ import annotations

import hashlib
import math
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float32, Float32MultiArray

from moejepa_ros import codecs
from moejepa_ros.control import ERROR, OK, WARN, Decision, FrameStack, LatentController, preprocess
from moejepa_ros.control.bounds import beyond_trained_range, bounds_problem
from moejepa_ros.control.device import resolve_device
from moejepa_ros.planning.progress import GoalProgress
from moejepa_ros.ros import dds, params, qos, usage
from moejepa_ros.ros.debug_view import DebugView
from moejepa_ros.ros.messages import (
    CAMERA_QOS,
    COMMAND_QOS,
    LATCHED_QOS,
    action_msg_class,
    no_plan_msg,
    plan_to_msg,
    stamp_ns,
)
from moejepa_ros.ros.stats import ControlStats
from moejepa_ros.ros.time_step import MIN_FRAMES, TOLERANCE, rate_mismatch
from moejepa_ros.ros.topic_checks import FrequencyCheck, StampCheck, merge

LEVEL_NAME = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}
_LIVE_SIMPLE = {"control_rate", "camera_timeout", "control_trigger", "goal_timeout", "diagnostics_period"}


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


class PlannerNode(LifecycleNode):
    """Latent MPC as a lifecycle node; see the module docstring for topics and threading."""

    def __init__(self, node_name: str = "planner_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self._specs = params.declare_planner_node(self)  # objective_plugins first: their objectives too
        self._configure_only = {s.name for s in self._specs if s.configure_only}
        self._vals = params.values(self, self._specs)
        self.add_on_set_parameters_callback(self._on_set)
        self.add_post_set_parameters_callback(self._post_set)
        v = self._vals
        self.stats = ControlStats()
        self.finalized = threading.Event()  # set by the shutdown transition
        self.configure_error: str | None = None
        self._ctrl: LatentController | None = None
        self._frames: FrameStack | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending_lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._goal_pending: tuple[np.ndarray | None, float] | None = None
        self._goal_time: float | None = None
        self._goal_progress = GoalProgress()  # goal distance per replan, since the goal was set
        self._last_goal_key: tuple[int, str, int] | None = None
        self._status = (OK, "unconfigured")
        self._status_lock = threading.Lock()
        self._last_malformed = -math.inf
        self._last_stale_zero = False
        self._subs: list[Any] = []
        self._diag_timer = None
        self._checkpoint_sha = ""
        self._device = ""
        self._last_reward = float("nan")
        self._active = False
        self._trained_bounds: tuple[Any, Any] = (None, None)  # the checkpoint meta's action range
        self._bounds_warning: str | None = None  # set while the bounds exceed the trained range
        self._apply_error: str | None = None  # set while a live change could not be applied
        self._in_force: dict[str, Any] = {}  # parameter values the controller runs with
        self._last_command = "none"  # planned | planned zero | safety zero: <reason>
        # Publishers exist in every state: the command type is read-only, and /diagnostics
        # reports configure failures too. Outputs are lifecycle publishers: sent only while active
        # (the zero command on deactivate goes out before they are deactivated).
        self._action_cls = action_msg_class(v["action_type"])
        self._pub_action = qos.publisher(self, self._action_cls, "action", COMMAND_QOS, lifecycle=True)
        self._pub_plan = qos.publisher(self, Float32MultiArray, "~/plan", COMMAND_QOS, lifecycle=True)
        self._debug = DebugView(self, self._vals) if v["debug.enabled"] else None
        self._time_step_s: float | None = None  # the checkpoint's control time step (training data's)
        self._ranges = codecs.GreyRanges()  # depth / mono16 -> 0..255: the checkpoint's unless overridden
        self._image_rx: float | None = None  # node-clock time (`_now`) of the newest image
        self._rate_warned = False
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._image_hz, self._image_stamps, self._action_hz = FrequencyCheck(), StampCheck(), FrequencyCheck()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._start_diag_timer(float(v["diagnostics_period"]))

    # ================================================================ parameters
    def _on_set(self, changed: list) -> Any:
        result = params.on_set_result(self._specs, self._vals, changed)
        ctrl = self._ctrl
        names = {p.name for p in changed}
        at_configure = sorted(n for n in names if n in self._configure_only)
        if result.successful and at_configure and ctrl is not None:
            result.successful = False
            result.reason = f"{', '.join(at_configure)} applies at configure: deactivate and clean up the node first"
        if result.successful and names & {"action_low", "action_high"}:
            reason = self._bounds_problem({p.name: p.value for p in changed}, ctrl)
            if reason:
                result.successful, result.reason = False, reason
        if result.successful and ctrl is not None and any(n.startswith("objectives.") for n in names):
            vals = dict(self._vals, **{p.name: p.value for p in changed})
            try:
                ctrl.check_objectives(params.objectives_dict(vals))
            except ValueError as e:  # e.g. metric=learned on a checkpoint without a goal head
                result.successful = False
                result.reason = str(e)
        return result

    def _bounds_problem(self, new: dict[str, Any], ctrl: LatentController | None) -> str | None:
        """What the apply step would refuse about the bounds in effect after `new` (an unset bound means
        the checkpoint's): sizes, float32 finiteness, order; unconfigured, the pair given so far."""
        low = new.get("action_low", self._vals["action_low"])
        high = new.get("action_high", self._vals["action_high"])
        if ctrl is not None:
            low = list(ctrl.low) if low is None else list(low)
            high = list(ctrl.high) if high is None else list(high)
            return bounds_problem(low, high, ctrl.action_dim)
        if low is None or high is None:
            given = list(low if low is not None else high or [])
            return bounds_problem(given, [x + abs(x) + 1.0 for x in given])  # finiteness alone
        return bounds_problem(list(low), list(high))

    def _post_set(self, changed: list) -> None:
        names = set()
        for p in changed:
            if p.name in self._vals:
                val = p.value
                if val is not None and not isinstance(val, (str, bool, int, float, list)):
                    val = list(val)
                self._vals[p.name] = val
                names.add(p.name)
        if "diagnostics_period" in names:
            self._start_diag_timer(float(self._vals["diagnostics_period"]))
        heavy = {n for n in names if n.startswith(("planner.", "objectives.")) or n in ("action_low", "action_high")}
        if heavy:
            with self._pending_lock:
                if any(n.startswith("planner.") for n in heavy):
                    self._pending["planner"] = True
                if any(n.startswith("objectives.") for n in heavy):
                    self._pending["objectives"] = True
                if heavy & {"action_low", "action_high"}:
                    self._pending["bounds"] = True
            if self._thread is None and self._ctrl is not None:
                self._apply_pending()  # inactive but configured: apply now
        if names:
            self.get_logger().info("parameters updated: " + ", ".join(sorted(names)))

    def _apply_pending(self) -> None:
        """Apply queued live changes; called from the planning thread (or when it is stopped)."""
        with self._pending_lock:
            pend, self._pending = self._pending, {}
            goal, self._goal_pending = self._goal_pending, None
        ctrl = self._ctrl
        if ctrl is None:
            return
        if pend:
            from moejepa_ros.planning import PlannerConfig

            v = self._vals
            try:
                ctrl.update(
                    planner_cfg=PlannerConfig.from_dict(params.planner_dict(v)) if pend.get("planner") else None,
                    objectives=params.objectives_dict(v) if pend.get("objectives") else None,
                    action_low=v["action_low"] if pend.get("bounds") and v["action_low"] is not None else None,
                    action_high=v["action_high"] if pend.get("bounds") and v["action_high"] is not None else None,
                )
            except Exception as e:  # the on-set checks should have caught it: revert, never pretend
                self._revert_unapplied(f"{type(e).__name__}: {e}")
            else:
                self._apply_error = None
                self._in_force = dict(self._vals)
                self._check_trained_range(ctrl)
        if goal is not None:
            frame, t = goal
            ctrl.set_goal(frame)
            if self._debug is not None:
                self._debug.goal = frame
            self._goal_time = t if frame is not None else None
            self._goal_progress.clear()

    def _revert_unapplied(self, why: str) -> None:
        """A live change failed to apply: put the parameters back to the values in force and raise ERROR."""
        from rclpy.parameter import Parameter

        back = [
            Parameter(k, value=old) for k, old in self._in_force.items() if old is not None and self._vals.get(k) != old
        ]
        self._apply_error = f"live parameter change not applied ({why}); reverted {[p.name for p in back]}"
        self.get_logger().error(self._apply_error)
        self._set_status(ERROR, self._apply_error)
        if back:
            self.set_parameters(back)

    def _check_trained_range(self, ctrl: LatentController) -> None:
        """WARN (diagnostics and log) while the bounds in force exceed the checkpoint's trained range."""
        was = self._bounds_warning
        self._bounds_warning = beyond_trained_range(ctrl.low.tolist(), ctrl.high.tolist(), *self._trained_bounds)
        if self._bounds_warning and self._bounds_warning != was:
            self.get_logger().warning(self._bounds_warning)

    # ================================================================ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        v = self._vals
        try:
            self._configure(v)
        except Exception as e:
            self.configure_error = str(e)
            self.get_logger().error(f"configure failed: {e}")
            self._set_status(ERROR, f"configure failed: {e}")
            self._free()
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        self._set_status(OK, "configured (inactive)")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self, v: dict[str, Any]) -> None:
        reason = params.check_all(self._specs, v)
        if reason:
            raise ValueError(reason)
        if not v["checkpoint"]:
            raise ValueError("parameter 'checkpoint' is empty: give the path of a .safetensors checkpoint")
        from moejepa_ros.model import load_checkpoint

        device = resolve_device(v["device"])
        model, meta = load_checkpoint(v["checkpoint"], device)
        cfg = model.cfg
        if v["frame_stack"] and v["frame_stack"] != cfg.frame_stack:
            raise ValueError(
                f"frame_stack={v['frame_stack']} but the checkpoint was trained with frame_stack={cfg.frame_stack}"
            )
        if v["image_size"] and v["image_size"] != cfg.image_size:
            raise ValueError(f"image_size={v['image_size']} but the checkpoint expects {cfg.image_size}")
        low = v["action_low"] if v["action_low"] is not None else meta.get("action_low")
        high = v["action_high"] if v["action_high"] is not None else meta.get("action_high")
        if low is None or high is None:
            raise ValueError("no action bounds: set action_low/action_high or save them in the checkpoint meta")
        pre = meta.get("preprocessing") or {}
        ranges, range_warnings = codecs.GreyRanges.from_dict(pre).overridden(v["depth_range"], v["mono16_range"])
        for warning in range_warnings:
            self.get_logger().warning(warning)
        if v["backend"] == "onnxruntime":
            from moejepa_ros.control.onnx_backend import OnnxWorldModel

            model = OnnxWorldModel(model, v["checkpoint"], device, v["num_threads"])
        from moejepa_ros.planning import PlannerConfig

        ctrl = LatentController(
            model,
            device,
            PlannerConfig.from_dict(params.planner_dict(v)),
            params.objectives_dict(v),
            low,
            high,
            encoder_precision=v["encoder_precision"],
            cuda_graphs=v["cuda_graphs"],
        )
        self._encode_action(ctrl.zero(), self._action_cls(), None)  # checks twist_fields / joint_names
        ctrl.warm_up()  # first-call allocations (and CUDA graph captures) happen here, not in control
        self._ctrl = ctrl
        self._trained_bounds = (meta.get("action_low"), meta.get("action_high"))
        self._check_trained_range(ctrl)
        self._in_force = dict(v)
        self._time_step_s = (meta.get("preprocessing") or {}).get("time_step_s")
        self._ranges = ranges
        self._rate_warned = False
        self._last_goal_key = None
        self._device = device
        self._checkpoint_sha = file_sha256(v["checkpoint"])
        self._frames = FrameStack(ctrl.frame_stack, ctrl.image_size)
        if v["image_transport"] == "compressed":
            self._subs.append(qos.subscription(self, CompressedImage, "image/compressed", self._on_image, CAMERA_QOS))
        else:
            self._subs.append(qos.subscription(self, Image, "image", self._on_image, CAMERA_QOS))
        # Two goal subscriptions: a latched one, so a planner that starts late gets the current goal, and a
        # volatile one that matches publishers with default QoS (e.g. `ros2 topic pub`), which a latched
        # subscription never hears. A latched publisher reaches both: _on_goal drops the repeat.
        # A volatile publisher is incompatible with the latched subscription only: no warning for that one.
        heard_by_volatile = SubscriptionEventCallbacks(incompatible_qos=lambda _: None)
        self._subs.append(
            qos.subscription(
                self, Image, "goal_image", self._on_goal, LATCHED_QOS, "latched", event_callbacks=heard_by_volatile
            )
        )
        self._subs.append(qos.subscription(self, Image, "goal_image", self._on_goal, COMMAND_QOS, "volatile"))
        self._subs.append(qos.subscription(self, Float32, "reward", self._on_reward, COMMAND_QOS))
        self.get_logger().info(
            f"loaded {v['checkpoint']} on {device} (sha256 {self._checkpoint_sha[:12]}, "
            f"{cfg.encoder} encoder, {cfg.experts} experts, frame_stack {cfg.frame_stack}, "
            f"{cfg.image_size}px); planner {ctrl.cfg.method} "
            f"{ctrl.cfg.samples}x{ctrl.cfg.horizon}x{ctrl.cfg.iterations}"
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._ctrl is None:
            return TransitionCallbackReturn.FAILURE
        self._ctrl.reset()
        result = super().on_activate(state)  # the lifecycle publishers first: the thread's first command goes out
        self._image_hz, self._image_stamps, self._action_hz = FrequencyCheck(), StampCheck(), FrequencyCheck()
        self._start_thread()
        self._active = True
        self._set_status(OK, "active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._stop_thread()
        self._publish_zero(flush=True)  # while the publishers are still active
        self._set_status(OK, "inactive (zero command sent)")
        return super().on_deactivate(state)  # deactivates the lifecycle publishers

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_thread()
        self._free()
        self._set_status(OK, "unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        was_active = self._active
        self._active = False
        self._stop_thread()
        if was_active:
            self._publish_zero(flush=True)
        self._free()
        self.finalized.set()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._stop_thread()
        self._publish_zero(flush=True)
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def _free(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        dev = self._device
        self._ctrl = None
        self._device, self._checkpoint_sha, self._time_step_s = "", "", None  # the next configure may swap the model
        if self._debug is not None:
            self._debug.goal = None  # a goal image at the old model's size
        self._frames = None
        self._bounds_warning = None
        self._goal_time = None
        self._image_rx = None
        self._goal_progress.clear()
        if dev.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def stop(self) -> None:
        """Process exit (signal): stop control and send the zero command if it was running."""
        was_active = self._active
        self._active = False
        self._stop_thread()
        if was_active:
            self._publish_zero(flush=True)

    # ================================================================ callbacks (executor)
    def _on_image(self, msg: Any) -> None:
        frames = self._frames
        if frames is None:
            return
        try:
            rgb = codecs.image_to_rgb(msg, ranges=self._ranges)
            frames.push(rgb, stamp_ns(msg.header.stamp), msg.header.frame_id)
            self._image_rx = self._now()
            self._image_hz.tick()
            self._image_stamps.tick(stamp_ns(msg.header.stamp), self.get_clock().now().nanoseconds)
        except Exception as e:
            self.stats.count("malformed_images")
            self._last_malformed = time.monotonic()
            self.get_logger().warning(f"dropped a malformed image: {e}", throttle_duration_sec=2.0)
            return
        self.stats.count("frames_received")
        self.stats.event("input")

    def _on_goal(self, msg: Image) -> None:
        if self._ctrl is None:
            return
        key = (stamp_ns(msg.header.stamp), msg.header.frame_id, zlib.crc32(bytes(msg.data)))
        if key == self._last_goal_key:  # the same message through the second subscription
            return
        self._last_goal_key = key
        try:
            frame = preprocess(codecs.image_to_rgb(msg, ranges=self._ranges), self._ctrl.image_size)
        except Exception as e:
            self.stats.count("malformed_goal_images")
            self.get_logger().warning(f"dropped a malformed goal image: {e}", throttle_duration_sec=2.0)
            return
        self.stats.count("goal_images")
        with self._pending_lock:
            self._goal_pending = (frame, self._now())
        if self._thread is None:
            self._apply_pending()
        if self._ctrl.needs_goal:
            self.get_logger().info("new goal image", throttle_duration_sec=1.0)
        else:
            self.get_logger().warning(
                "goal image received, but objectives.goal.enabled is false: the plan ignores it",
                throttle_duration_sec=5.0,
            )

    def _on_reward(self, msg: Float32) -> None:
        self._last_reward = float(msg.data)
        self.stats.sample("reward", float(msg.data))

    def _now(self) -> float:
        """Seconds for timeouts: the node clock under use_sim_time (a paused simulator is not a stale
        camera), else steady time (immune to wall-clock jumps)."""
        clock = self.get_clock()
        if clock.ros_time_is_active:
            return clock.now().nanoseconds / 1e9
        return time.monotonic()

    def _check_camera_rate(self, s: dict[str, float]) -> None:
        """Warn once per configure when the camera rate differs from the checkpoint's time step."""
        if self._rate_warned or s.get("frames_received", 0) < MIN_FRAMES:
            return
        msg = rate_mismatch(s.get("input_hz", 0.0), self._time_step_s)
        if msg:
            self._rate_warned = True
            self.get_logger().warning(msg)

    # ================================================================ planning thread
    def _start_thread(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="moejepa_planning", daemon=False)
        self._thread.start()

    def _stop_thread(self) -> None:
        t = self._thread
        if t is None:
            return
        self._stop.set()
        if self._frames is not None:
            self._frames.wake()
        t.join()
        self._thread = None

    def _loop(self) -> None:
        """The planning thread: `_plan_loop`, and the zero command + ERROR if it ever dies."""
        try:
            self._plan_loop()
        except Exception as e:
            self.stats.count("errors")
            self._publish_zero(reason=f"planning thread died: {type(e).__name__}", flush=True)
            self._set_status(ERROR, f"planning thread died: {type(e).__name__}: {e}; zero command, not planning")
            self.get_logger().error(f"planning thread died: {type(e).__name__}: {e}")

    def _plan_loop(self) -> None:
        import torch

        torch.set_num_threads(int(self._vals["num_threads"]))
        frames = self._frames
        last_seq = 0
        # Rate cap for the frame trigger: a token bucket (refill control_rate/s, burst 2). A
        # strict "one period since the last plan" cap, fed by a camera at the same rate, is a
        # queue at full load: every late frame delays all later ones, so frames waited up to a
        # period before planning (bench_node: p50 35 ms with 16 ms plans).
        tokens, t_tokens = 1.0, time.monotonic()
        next_tick = time.monotonic()
        while not self._stop.is_set():
            rate = float(self._vals["control_rate"])
            period = 1.0 / rate
            if self._vals["control_trigger"] == "frame":
                got = frames.wait_newer(last_seq, timeout=period)
                if self._stop.is_set():
                    break
                now = time.monotonic()
                tokens, t_tokens = min(2.0, tokens + (now - t_tokens) * rate), now
                if got and tokens < 1.0:  # over control_rate: wait for the next token
                    if self._stop.wait((1.0 - tokens) / rate):
                        break
                    now = time.monotonic()
                    tokens, t_tokens = min(2.0, tokens + (now - t_tokens) * rate), now
                if got:
                    tokens -= 1.0
            else:
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                elif -delay > period:  # fell behind by more than a period: skip, don't burst
                    next_tick = time.monotonic()
            try:
                last_seq = self._step(last_seq, period)
            except Exception as e:
                self.stats.count("errors")
                self._publish_zero(reason=f"control step failed: {type(e).__name__}")
                self._set_status(ERROR, f"control step failed: {type(e).__name__}: {e}; zero command")
                self.get_logger().error(f"control step failed: {e}", throttle_duration_sec=2.0)

    def _step(self, last_seq: int, period: float) -> int:
        """One control step; returns the sequence number of the frame it planned on."""
        self._apply_pending()
        ctrl, frames = self._ctrl, self._frames
        now = self._now()
        gt = float(self._vals["goal_timeout"])
        if gt > 0 and self._goal_time is not None and now - self._goal_time > gt:
            ctrl.set_goal(None)
            self._goal_time = None
            self._goal_progress.clear()
            self.get_logger().warning("goal image expired (goal_timeout)")
        snap = frames.snapshot()
        timeout = float(self._vals["camera_timeout"])
        if snap is None or self._image_rx is None or now - self._image_rx > timeout:
            self._publish_zero(reason="no fresh image")
            self.stats.count("zero_commands")
            if snap is not None:  # a new stack must not mix frames from before the stall
                frames.clear()
                ctrl.reset()
            if self._image_rx is not None:
                msg = f"no image for {now - self._image_rx:.2f} s (camera_timeout {timeout:g} s); zero command"
            else:
                msg = "no image received yet; zero command"
            self._set_status(WARN, msg)
            if not self._last_stale_zero:
                self.get_logger().warning(msg)
            self._last_stale_zero = True
            return snap.seq if snap is not None else last_seq
        if self._last_stale_zero:
            self.get_logger().info("camera is back; planning resumed")
        self._last_stale_zero = False
        if snap.seq == last_seq and self._vals["control_trigger"] == "frame":
            return last_seq  # woke without a new frame (watchdog tick)
        if last_seq and snap.seq > last_seq + 1:
            self.stats.count("frames_dropped", snap.seq - last_seq - 1)
        t0 = time.monotonic()
        decision = ctrl.act(snap.frames)
        self._publish_action(decision.action, snap.stamp_ns)
        self._note_command(decision)
        t1 = time.monotonic()
        if decision.plan_actions is not None:
            self._pub_plan.publish(plan_to_msg(decision.plan_actions, decision.predicted_cost))
            if self._debug is not None:
                t_debug, plan = time.monotonic(), ctrl.last_plan
                self._debug.publish(
                    snap.stamp_ns,
                    self._time_step_s or period,
                    snap.frames[-1],
                    snap.frame_id,
                    decision.plan_actions,
                    decision.predicted_cost,
                    plan.goal_distance if plan is not None else float("nan"),
                )
                self.stats.sample("debug_ms", (time.monotonic() - t_debug) * 1e3)  # after the command: its cost
        elif decision.level != OK:
            self._pub_plan.publish(no_plan_msg(ctrl.action_dim))
        self._record(decision, snap, t0, t1, period)
        return snap.seq

    def _record(self, d: Decision, snap: Any, t0: float, t1: float, period: float) -> None:
        s = self.stats
        s.event("control")
        s.count("commands")
        s.sample("latency_ms", (t1 - snap.rx_time) * 1e3)  # image receipt → command published
        s.sample("compute_ms", (t1 - t0) * 1e3)
        s.sample("plan_ms", d.plan_ms)
        s.sample("encode_ms", d.encode_ms)
        now_ns = self.get_clock().now().nanoseconds
        if snap.stamp_ns > 0 and now_ns >= snap.stamp_ns:
            s.sample("stamp_latency_ms", (now_ns - snap.stamp_ns) / 1e6)  # header stamp → publish (node clock)
        if t1 - t0 > period:
            s.count("deadline_misses")
        if d.level == ERROR:
            s.count("nonfinite_plans" if "finite" in d.message else "errors")
            self.get_logger().error(d.message, throttle_duration_sec=2.0)
        stalled = self._track_goal(self._ctrl)
        if d.level == OK and stalled:
            self._set_status(WARN, stalled)
        else:
            self._set_status(d.level, d.message if d.level != OK else "planning")

    def _track_goal(self, ctrl: LatentController | None) -> str | None:
        """Feed this replan's goal distance to the progress count; the WARN message when it has not
        dropped by `planner.stall_progress` for `goal_progress_window` replans, else None."""
        plan = ctrl.last_plan if ctrl is not None else None
        if plan is None or math.isnan(plan.goal_distance):
            return None
        v, g = self._vals, self._goal_progress
        g.update(plan.goal_distance, float(v["planner.stall_progress"]))
        if not g.stalled(int(v["goal_progress_window"]), float(v["planner.stall_min_distance"])):
            return None
        msg = f"no progress toward the goal for {g.since} replans (distance {g.distance:.3g}, best {g.best:.3g})"
        self.get_logger().warning(msg, throttle_duration_sec=5.0)
        return msg

    # ================================================================ publishing
    def _publish_action(self, action: np.ndarray, stamp: int | None) -> None:
        if stamp is None:
            stamp = self.get_clock().now().nanoseconds
        msg = self._encode_action(action, self._action_cls(), stamp)
        if hasattr(msg, "header"):
            msg.header.frame_id = self._vals["command_frame_id"]
        self._pub_action.publish(msg)
        self._action_hz.tick()

    def _encode_action(self, action: np.ndarray, msg: Any, stamp: int | None) -> Any:
        """The command message of `action`; the type's codec takes the options it uses."""
        v = self._vals
        return codecs.action_to_msg(
            action, msg, fields=v["twist_fields"], joint_names=v["joint_names"] or [], stamp_ns=stamp
        )

    def _note_command(self, d: Decision) -> None:
        """Tell a planned zero from a safety zero: a Decision below OK carries the controller's zero."""
        if d.level != OK:
            self.stats.count("safety_zero_commands")
            self._last_command = f"safety zero: {d.message}"
        elif not np.any(d.action):
            self.stats.count("planned_zero_commands")
            self._last_command = "planned zero"
        else:
            self._last_command = "planned"

    def _publish_zero(self, reason: str = "stopping", flush: bool = False) -> None:
        """The safe command (exactly zero), stamped now; `flush` (on every stop) waits until the
        subscribers have it, so it is not lost with the publisher that goes away next."""
        ctrl = self._ctrl
        if ctrl is None:
            return
        try:
            self._publish_action(ctrl.zero(), None)
            ctrl.executed(ctrl.zero())  # the motion model's command history (goal metric pose) sees the stop too
            self._pub_plan.publish(no_plan_msg(ctrl.action_dim))
            self.stats.count("safety_zero_commands")
            self._last_command = f"safety zero: {reason}"
            if flush:
                self._pub_action.wait_for_all_acked(Duration(seconds=1.0))
        except Exception as e:
            self.get_logger().error(f"could not publish the zero command: {e}", throttle_duration_sec=2.0)

    # ================================================================ diagnostics
    def _set_status(self, level: int, message: str) -> None:
        with self._status_lock:
            changed = level != self._status[0]
            self._status = (level, message)
        if changed and level > OK:
            self._publish_diagnostics()  # problems are reported at once, not at the next period

    def _start_diag_timer(self, period: float) -> None:
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        # wall (steady) time: under use_sim_time a ROS-time timer is silent until /clock arrives
        self._diag_timer = self.create_timer(period, self._publish_diagnostics, clock=self._steady)

    def diagnostics_status(self) -> DiagnosticStatus:
        with self._status_lock:
            level, message = self._status
        if level == OK and time.monotonic() - self._last_malformed < float(self._vals["diagnostics_period"]) + 1:
            level, message = WARN, "dropping malformed images"
        if self._apply_error and level < ERROR:
            level, message = ERROR, self._apply_error
        if self._bounds_warning and level == OK:
            level, message = WARN, self._bounds_warning
        if level < ERROR and self.get_parameter("use_sim_time").value and self.get_clock().now().nanoseconds == 0:
            level, message = WARN, "waiting for /clock (use_sim_time is true)"
        st = DiagnosticStatus()
        st.level = bytes([level])
        st.name = f"{self.get_fully_qualified_name()}: control"
        st.message = message
        st.hardware_id = self._hardware_id()
        s = self.stats.summary()
        self._check_camera_rate(s)
        v = self._vals
        kv: dict[str, Any] = {
            "device": self._device or "none",
            "checkpoint": v["checkpoint"],
            "checkpoint_sha256": self._checkpoint_sha,
            "active": self._active,
            "control_rate_target_hz": v["control_rate"],
            "control_rate_hz": s.get("control_hz", 0.0),
            "input_rate_hz": s.get("input_hz", 0.0),
            "goal": self._ctrl is not None and self._ctrl.goal_z is not None,
            "last_reward": self._last_reward,
            "last_command": self._last_command,
            "time_step_s": self._time_step_s or "unknown",
        }
        g = self._goal_progress
        if kv["goal"] and not math.isnan(g.distance):
            kv["goal_distance"], kv["goal_distance_best"] = f"{g.distance:.4g}", f"{g.best:.4g}"  # any scale
            kv["replans_without_progress"] = g.since
        if self._ctrl is not None and self._ctrl.route is not None:  # goal metric pose with the model's map
            w = self._ctrl.waypoint
            kv["route_waypoint"] = "none: goal in sight" if w is None else f"{w[0]:.2f} {w[1]:.2f} {w[2]:.2f}"
        for name in ("latency_ms", "stamp_latency_ms", "compute_ms", "plan_ms", "encode_ms", "debug_ms"):
            if f"{name}_p50" in s:
                kv[f"{name}_p50"], kv[f"{name}_p99"] = s[f"{name}_p50"], s[f"{name}_p99"]
        for name in (
            "frames_received",
            "frames_dropped",
            "malformed_images",
            "goal_images",
            "commands",
            "zero_commands",
            "safety_zero_commands",
            "planned_zero_commands",
            "deadline_misses",
            "nonfinite_plans",
            "errors",
        ):
            kv[name] = int(s.get(name, 0))
        ctrl = self._ctrl
        if ctrl is not None:
            kv["planner"] = (
                f"{ctrl.cfg.method} samples={ctrl.cfg.samples} horizon={ctrl.cfg.horizon} "
                f"iterations={ctrl.cfg.iterations}"
            )
            if ctrl.planner is not None and ctrl.cfg.stall_steps > 0:
                kv["stall_recovery"] = ctrl.planner.recovering  # planner.stall_*: paying for revisits now
            routing = ctrl.routing()
            if "load" in routing:
                kv["expert_load"] = " ".join(f"{x:.3f}" for x in routing["load"])
            if "entropy" in routing:
                kv["router_entropy"] = f"{routing['entropy'][0]:.4f}"
        st.values = [KeyValue(key=k, value=(f"{x:.3f}" if isinstance(x, float) else str(x))) for k, x in kv.items()]
        return st

    def _hardware_id(self) -> str:
        return self._vals["hardware_id"] or self.get_fully_qualified_name()

    def topic_statuses(self) -> list[DiagnosticStatus]:
        """`image` and `action` topic statuses: diagnostic_updater's frequency and timestamp checks. Images
        are expected at the checkpoint's rate (its time step, when known); commands at most at `control_rate`,
        and (timer trigger) at least, else at least at the camera's expected rate. Checked while active."""
        v = self._vals
        rate, camera = float(v["control_rate"]), (1.0 / self._time_step_s if self._time_step_s else None)
        low = rate if v["control_trigger"] == "timer" else min(rate, camera or 0.0)
        checks = {
            "image": merge(self._image_hz.report(camera or 0.0, camera, TOLERANCE), self._image_stamps.report()),
            "action": self._action_hz.report(low, rate, TOLERANCE),
        }
        out = []
        for topic, (level, message, values) in checks.items():
            if not self._active:
                level, message = OK, "not checked while the node is not active"
            st = DiagnosticStatus(
                level=bytes([level]),
                name=f"{self.get_fully_qualified_name()}: {topic} topic status",
                message=message,
                hardware_id=self._hardware_id(),
            )
            st.values = [KeyValue(key=k, value=x) for k, x in values]
            out.append(st)
        return out

    def _publish_diagnostics(self) -> None:
        try:
            arr = DiagnosticArray()
            arr.header.stamp = self.get_clock().now().to_msg()
            arr.status = [self.diagnostics_status(), *self.topic_statuses()]
            self._pub_diag.publish(arr)
        except Exception as e:
            self.get_logger().warning(f"diagnostics failed: {e}", throttle_duration_sec=10.0)


def main(args: list[str] | None = None) -> int:
    """Run the planner node until SIGINT/SIGTERM or the lifecycle shutdown transition.

    Signals are handled here, not by rclpy, so the node can stop the planning thread and
    publish the zero command before the context goes away.
    """
    if usage.print_help_if_requested("planner_node", __doc__, params.PLANNER_NODE_SPECS, args):
        return 0
    stop = dds.init_rclpy(args)
    node = None
    rc = 0
    try:
        try:
            node = PlannerNode()
        except ValueError as e:  # e.g. an objective plugin that cannot be imported
            print(f"planner_node: {e}", file=sys.stderr)
            return 1
        if node.get_parameter("autostart").value:
            node.trigger_configure()
            if node.configure_error is not None:
                print(f"planner_node: configure failed: {node.configure_error}", file=sys.stderr)
                return 1
            node.trigger_activate()
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        while not stop.is_set() and not node.finalized.is_set():
            ex.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main())
