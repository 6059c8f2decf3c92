"""sim_node: any `moejepa_ros.sim` env as a ROS 2 camera + robot, for demos and closed-loop tests.

Publishes `image` (rgb8) at `rate`, `reward` (Float32), `episode` (Int32, the episode index at
each episode start), the latched `goal_image` in goal mode, optionally `/clock`, and one JSON
line per finished episode on `~/episode_result` (success, steps, return, ...). Subscribes
`action` (the planner's command type, decoded by `codecs.msg_to_action`) and holds the newest
action (zero-order hold) until the next one. With `wait_for_action` the first frame of the run
is republished without stepping until a first action arrives, so a demo's planner and
simulator start together however long model loading takes; `min_result_subscribers` also
waits for a results collector (e.g. the demo), and results are latched for late joiners.

`lockstep` makes the closed loop exact instead of real-time: each frame is held (not stepped)
until the planner has answered it — a stamped action (TwistStamped, JointTrajectory) must carry
that frame's stamp, which planner_node copies from its input; for unstamped types any action
received after the frame counts — so success measures the model and planner, not scheduling.
Where the env reports a 2-D `pos`, each result also carries the episode's path, goal and layout.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Int32, String

from moejepa_ros import codecs
from moejepa_ros.ros import dds, params, qos, usage
from moejepa_ros.ros.messages import (
    COMMAND_QOS,
    IMAGE_PUB_QOS,
    LATCHED_QOS,
    RESULTS_QOS,
    action_msg_class,
    stamp_ns,
)


class SimNode(Node):
    """Steps a gymnasium env at `rate` on a steady-clock timer and bridges it to topics."""

    def __init__(self, node_name: str = "sim_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        params.declare(self, params.SIM_NODE_SPECS)
        self.add_on_set_parameters_callback(
            lambda changed: params.on_set_result(params.SIM_NODE_SPECS, self._values(), changed)
        )
        self.add_post_set_parameters_callback(self._post_set)
        v = self._values()
        reason = params.check_all(params.SIM_NODE_SPECS, v)
        if reason:
            raise ValueError(f"sim_node: {reason}")
        self._env = self._make_env(v)
        space = self._env.action_space
        self._action_dim = int(np.prod(space.shape))
        self._low = np.asarray(space.low, np.float32).reshape(-1)
        self._high = np.asarray(space.high, np.float32).reshape(-1)
        self._fields, self._joints = v["twist_fields"], v["joint_names"]  # each command type uses its own
        self._action_timeout = float(v["action_timeout"])
        self._max_episodes = int(v["episodes"])
        self._frame_id = v["frame_id"]
        self._publish_clock = bool(v["publish_clock"])
        self._wait_for_action = bool(v["wait_for_action"])
        self._seed = int(v["seed"])
        self._min_result_subs = int(v["min_result_subscribers"])
        self._started = False
        self._lockstep = bool(v["lockstep"])
        self._lockstep_timeout = float(v["lockstep_timeout"])
        self._hold_frames = int(v["episode_hold_frames"])
        self._hold_left = 0
        self._held_stamp = 0  # stamp of the newest published frame (lockstep waits for its answer)
        self._held_since = -float("inf")
        self._answered = False
        self._last_step_t = -float("inf")
        self._path: list[list[float]] = []

        self._lock = threading.Lock()
        self._action = np.zeros(self._action_dim, np.float32)
        self._action_rx: float | None = None  # steady time of the newest action
        self._actions_received = 0
        self._bad_actions = 0

        # QoS: messages' profiles, overridable from parameters (qos_overrides.<topic>.*).
        self._pub_image = qos.publisher(self, Image, "image", IMAGE_PUB_QOS)
        self._pub_goal = qos.publisher(self, Image, "goal_image", LATCHED_QOS)
        self._pub_reward = qos.publisher(self, Float32, "reward", COMMAND_QOS)
        self._pub_episode = qos.publisher(self, Int32, "episode", LATCHED_QOS)  # late joiners learn it
        # Results are latched with a deep history: a collector that joins late still gets them all.
        self._pub_result = qos.publisher(self, String, "~/episode_result", RESULTS_QOS)
        self._pub_clock = self.create_publisher(ClockMsg, "/clock", 10) if self._publish_clock else None
        qos.subscription(self, action_msg_class(v["action_type"]), "action", self._on_action, COMMAND_QOS)

        self.results: list[dict[str, Any]] = []
        self.finished = threading.Event()  # set after `episodes` episodes
        self._episode = -1
        self._sim_steps = 0  # total steps (sim time = steps / rate)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timer = None
        self._start_timer(float(v["rate"]))
        self._new_episode()

    # ------------------------------------------------------------------ setup
    def _values(self) -> dict[str, Any]:
        return params.values(self, params.SIM_NODE_SPECS)

    def _make_env(self, v: dict[str, Any]):
        from moejepa_ros.sim import make_env

        kw: dict[str, Any] = {}
        if v["mode"]:
            kw["mode"] = v["mode"]
        if v["max_episode_steps"]:
            kw["max_episode_steps"] = int(v["max_episode_steps"])
        while True:  # an env without modes (dmc:...) or its own step limit: drop the option, say so
            try:
                env = make_env(v["env"], **kw)
                break
            except TypeError as e:
                bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
                if bad is None or bad.group(1) not in kw:
                    raise ValueError(f"sim_node: env {v['env']!r} does not accept {sorted(kw)}: {e}") from e
                self.get_logger().warning(f"env {v['env']!r} takes no {bad.group(1)}={kw.pop(bad.group(1))!r}: ignored")
        # sim_node truncates the episodes itself when the env cannot
        self._truncate_at = int(v["max_episode_steps"]) if "max_episode_steps" not in kw else 0
        return env

    def _start_timer(self, rate: float) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._rate = rate
        self._timer = self.create_timer(1.0 / rate, self._tick, clock=self._steady)

    def _post_set(self, changed: list) -> None:
        for p in changed:
            if p.name == "rate":
                self._start_timer(float(p.value))
            elif p.name == "action_timeout":
                self._action_timeout = float(p.value)
            elif p.name == "lockstep_timeout":
                self._lockstep_timeout = float(p.value)
            elif p.name == "max_episode_steps":
                self.get_logger().warning("max_episode_steps applies from the next sim_node start")

    # ------------------------------------------------------------------ time
    def _now_ns(self) -> int:
        if self._publish_clock:
            return int(round(self._sim_steps * 1e9 / self._rate))
        return self.get_clock().now().nanoseconds

    def _publish_time(self) -> int:
        ns = self._now_ns()
        if self._pub_clock is not None:
            msg = ClockMsg()
            msg.clock.sec, msg.clock.nanosec = divmod(ns, 1_000_000_000)
            self._pub_clock.publish(msg)
        return ns

    # ------------------------------------------------------------------ callbacks
    def _on_action(self, msg: Any) -> None:
        try:
            a = codecs.msg_to_action(msg, self._action_dim, fields=self._fields, joint_names=self._joints)
            a = codecs.clamp_action(a, self._low, self._high)
        except codecs.CodecError as e:
            self._bad_actions += 1
            self.get_logger().warning(f"dropped a malformed action: {e}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._action = a
            self._action_rx = time.monotonic()
            self._actions_received += 1
        if self._lockstep:
            header = getattr(msg, "header", None)
            if header is None or stamp_ns(header.stamp) == self._held_stamp:
                self._answered = True
                self._tick()  # step now rather than at the next timer tick

    def _current_action(self) -> np.ndarray:
        with self._lock:
            a, rx = self._action.copy(), self._action_rx
        if self._action_timeout > 0 and rx is not None and time.monotonic() - rx > self._action_timeout:
            a[:] = 0.0
        return a

    def _new_episode(self) -> None:
        self._episode += 1
        self._steps = 0
        self._return = 0.0
        self._obs, info = self._env.reset(seed=self._seed + self._episode)
        self._info = info
        self._hold_left = self._hold_frames if self._lockstep else 0
        self._path = [_pos(info)] if "pos" in info else []
        ns = self._publish_time()
        self._pub_episode.publish(Int32(data=self._episode))
        if self._hold_left == 0:
            self._publish_goal(ns)
        self._publish_obs(ns)

    def _publish_goal(self, ns: int) -> None:
        """The episode's goal image, sent with the frame whose answer is executed first: a planner
        resets on a new goal, so its online model correction never learns from the held frames'
        answers, which the sim does not execute."""
        goal = self._info.get("goal_image")
        if goal is not None:
            self._pub_goal.publish(codecs.make_image(Image, np.ascontiguousarray(goal), "rgb8", ns, self._frame_id))

    def _publish_obs(self, ns: int) -> None:
        if self._lockstep and ns <= self._held_stamp:
            ns = self._held_stamp + 1  # a republished frame gets its own stamp: its answer is told apart
        self._held_stamp, self._held_since, self._answered = ns, time.monotonic(), False
        self._pub_image.publish(codecs.make_image(Image, np.ascontiguousarray(self._obs), "rgb8", ns, self._frame_id))

    def _tick(self) -> None:
        if self.finished.is_set():
            return
        if self._lockstep:
            self._tick_lockstep()
            return
        if not self._started:
            waiting = (
                self._wait_for_action and self._actions_received == 0
            ) or self._pub_result.get_subscription_count() < self._min_result_subs
            if waiting:
                self._publish_obs(self._publish_time())  # keep the first frame coming until all are ready
                return
            self._started = True
        self._step_env()

    def _tick_lockstep(self) -> None:
        """Step only when the held frame was answered (and at most `rate` times per second)."""
        now = time.monotonic()
        ready = self._answered and self._pub_result.get_subscription_count() >= self._min_result_subs
        if not ready:
            if now - self._held_since >= self._lockstep_timeout:  # lost frame or late planner: resend
                self._publish_obs(self._publish_time())
            return
        if self._hold_left > 0:  # refill the planner's frame stack with this episode's first frame
            self._hold_left -= 1
            ns = self._publish_time()
            if self._hold_left == 0:
                self._publish_goal(ns)
            self._publish_obs(ns)
            return
        if now - self._last_step_t < 1.0 / self._rate:
            return  # the timer steps it
        self._started = True
        self._last_step_t = now
        self._step_env()

    def _step_env(self) -> None:
        a = self._current_action()
        self._obs, reward, terminated, truncated, info = self._env.step(a)
        self._info = info
        if "pos" in info:
            self._path.append(_pos(info))
        self._steps += 1
        self._sim_steps += 1
        truncated = truncated or 0 < self._truncate_at <= self._steps
        self._return += float(reward)
        ns = self._publish_time()
        self._pub_reward.publish(Float32(data=float(reward)))
        self._publish_obs(ns)
        if terminated or truncated:
            self._end_episode(bool(terminated), bool(truncated))

    def _end_episode(self, terminated: bool, truncated: bool) -> None:
        result = {
            "episode": self._episode,
            "success": bool(self._info.get("success", terminated)),
            "steps": self._steps,
            "return": round(self._return, 6),
            "terminated": terminated,
            "truncated": truncated,
            "final_distance": float(self._info["distance"]) if "distance" in self._info else None,
            "bad_actions": self._bad_actions,
            "lockstep": self._lockstep,
        }
        if self._path:  # 2-D agents (Two-Rooms): what a demo needs to draw the episode
            result["path"] = self._path
            if "goal_state" in self._info:
                result["goal"] = _pos({"pos": self._info["goal_state"][:2]})
            for k in ("wall_x", "door_y"):
                if k in self._info:
                    result[k] = int(self._info[k])
        self.results.append(result)
        self._pub_result.publish(String(data=json.dumps(result)))
        self.get_logger().info(f"episode {self._episode}: success={result['success']} steps={self._steps}")
        if self._max_episodes and len(self.results) >= self._max_episodes:
            n_ok = sum(r["success"] for r in self.results)
            self.get_logger().info(f"finished {len(self.results)} episodes, {n_ok} successful")
            self.finished.set()
            return
        self._new_episode()


def _pos(info: dict[str, Any]) -> list[float]:
    return [round(float(x), 3) for x in np.asarray(info["pos"]).reshape(-1)[:2]]


def main(args: list[str] | None = None) -> int:
    """Run sim_node until SIGINT/SIGTERM, or until `episodes` episodes have finished."""
    if usage.print_help_if_requested("sim_node", __doc__, params.SIM_NODE_SPECS, args):
        return 0
    stop = dds.init_rclpy(args)
    node = None
    rc = 0
    try:
        node = SimNode()
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        while not stop.is_set() and not node.finished.is_set():
            ex.spin_once(timeout_sec=0.1)
        if node.finished.is_set():  # let the last result reach its subscribers
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline and not stop.is_set():
                ex.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as e:  # bad configuration: one clear line, non-zero exit
        print(f"sim_node: {e}", file=sys.stderr)
        rc = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main())
