"""planner_node's debug view: the plan as a robot engineer looks at it in RViz, rqt and PlotJuggler.

With `debug.enabled` (off by default: it costs time in the planning thread) every replan publishes,
stamped with the image stamp the command carries, in `command_frame_id`:

- `~/plan_path` (nav_msgs/Path) for Twist commands: the planned velocities integrated as a planar
  base (x, y, yaw) over the horizon, one pose per control time step, starting at the origin;
- `~/plan_trajectory` (trajectory_msgs/JointTrajectory) for the other command types: point k holds
  planned action k (as positions) at `time_from_start` = (k + 1) time steps;
- `~/goal_distance` (while a goal is set) and `~/predicted_cost` as stamped scalars
  (geometry_msgs/Vector3Stamped, the value in `vector.x`) a plotter can show;
- `~/debug_image` (sensor_msgs/Image, rgb8) at most `debug.image_rate` times per second: the current
  frame and the goal image side by side (the model's input size, scaled up), with the goal distance,
  predicted cost and first planned action written on it, in the camera's frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from geometry_msgs.msg import PoseStamped, Twist, Vector3Stamped
from nav_msgs.msg import Path
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from moejepa_ros import codecs
from moejepa_ros.ros import qos
from moejepa_ros.ros.messages import COMMAND_QOS, IMAGE_PUB_QOS

#: Pixels per side of each panel of `~/debug_image`.
PANEL_PX = 256


def time_msg(ns: int) -> Any:
    """builtin_interfaces/Time (as a Header's stamp) of integer nanoseconds."""
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def integrate_twists(twists: list[tuple[float, float, float]], dt: float) -> np.ndarray:
    """(vx, vy, wz) per step, held for `dt` s each, from the origin → poses [H + 1, 3] of (x, y, yaw)."""
    out = np.zeros((len(twists) + 1, 3))
    x = y = yaw = 0.0
    for k, (vx, vy, wz) in enumerate(twists):
        x += (vx * math.cos(yaw) - vy * math.sin(yaw)) * dt
        y += (vx * math.sin(yaw) + vy * math.cos(yaw)) * dt
        yaw += wz * dt
        out[k + 1] = (x, y, yaw)
    return out


def side_by_side(current: np.ndarray, goal: np.ndarray | None, lines: list[str]) -> np.ndarray:
    """RGB uint8 [PANEL_PX, 2 * PANEL_PX, 3]: current | goal (grey when there is none), `lines` written on top."""

    def panel(img: np.ndarray | None) -> np.ndarray:
        if img is None:
            return np.full((PANEL_PX, PANEL_PX, 3), 64, np.uint8)
        return cv2.resize(img, (PANEL_PX, PANEL_PX), interpolation=cv2.INTER_NEAREST)

    out = np.ascontiguousarray(np.concatenate([panel(current), panel(goal)], axis=1))
    for i, text in enumerate(lines):
        org = (6, 18 + 18 * i)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class DebugView:
    """The debug publishers of one planner_node; `publish` runs in the planning thread after the command."""

    def __init__(self, node: Any, vals: Mapping[str, Any]):
        self._vals = vals  # the node's live parameter values (debug.image_rate may change)
        self._twist = codecs.command_type(vals["action_type"]).name.startswith("geometry_msgs/msg/Twist")
        if self._twist:
            self._pub_path = qos.publisher(node, Path, "~/plan_path", COMMAND_QOS, lifecycle=True)
        else:
            self._pub_trajectory = qos.publisher(
                node, JointTrajectory, "~/plan_trajectory", COMMAND_QOS, lifecycle=True
            )
        self._pub_distance = qos.publisher(node, Vector3Stamped, "~/goal_distance", COMMAND_QOS, lifecycle=True)
        self._pub_cost = qos.publisher(node, Vector3Stamped, "~/predicted_cost", COMMAND_QOS, lifecycle=True)
        self._pub_image = qos.publisher(node, Image, "~/debug_image", IMAGE_PUB_QOS, lifecycle=True)
        self._last_image = -math.inf
        self.goal: np.ndarray | None = None  # the goal image as the model sees it, or None

    def publish(
        self,
        stamp_ns: int,
        dt: float,
        frame: np.ndarray,
        camera_frame_id: str,
        plan_actions: np.ndarray,
        predicted_cost: float,
        goal_distance: float,
    ) -> None:
        """Publish the plan, the scalars and (throttled) the image of `frame` for the command stamped `stamp_ns`."""
        frame_id = self._vals["command_frame_id"]
        if self._twist:
            self._pub_path.publish(self.path(stamp_ns, dt, frame_id, plan_actions))
        else:
            self._pub_trajectory.publish(self.trajectory(stamp_ns, dt, frame_id, plan_actions))
        if math.isfinite(goal_distance):
            self._pub_distance.publish(self._scalar(stamp_ns, frame_id, goal_distance))
        self._pub_cost.publish(self._scalar(stamp_ns, frame_id, predicted_cost))
        now = time.monotonic()
        if now - self._last_image >= 1.0 / float(self._vals["debug.image_rate"]):
            self._last_image = now
            image = self.image(stamp_ns, frame, camera_frame_id, plan_actions, predicted_cost, goal_distance)
            self._pub_image.publish(image)

    def path(self, stamp_ns: int, dt: float, frame_id: str, plan_actions: np.ndarray) -> Path:
        """The planned Twists integrated as a planar base, in `frame_id`; pose k is stamped k·dt later."""
        twists = []
        for a in plan_actions:
            t = codecs.action_to_msg(a, Twist(), fields=self._vals["twist_fields"])
            twists.append((t.linear.x, t.linear.y, t.angular.z))
        msg = Path()
        msg.header.stamp, msg.header.frame_id = time_msg(stamp_ns), frame_id
        for k, (x, y, yaw) in enumerate(integrate_twists(twists, dt)):
            p = PoseStamped()
            p.header.stamp, p.header.frame_id = time_msg(stamp_ns + int(round(k * dt * 1e9))), frame_id
            p.pose.position.x, p.pose.position.y = float(x), float(y)
            p.pose.orientation.z, p.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
            msg.poses.append(p)
        return msg

    def trajectory(self, stamp_ns: int, dt: float, frame_id: str, plan_actions: np.ndarray) -> JointTrajectory:
        """Planned action k as the positions of point k, reached (k + 1)·dt after the stamp."""
        msg = JointTrajectory()
        msg.header.stamp, msg.header.frame_id = time_msg(stamp_ns), frame_id
        names = self._vals["joint_names"] or [f"action_{i}" for i in range(plan_actions.shape[1])]
        msg.joint_names = list(names)
        for k, a in enumerate(plan_actions):
            ns = int(round((k + 1) * dt * 1e9))
            p = JointTrajectoryPoint(positions=[float(x) for x in a])
            p.time_from_start.sec, p.time_from_start.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
            msg.points.append(p)
        return msg

    def image(
        self,
        stamp_ns: int,
        frame: np.ndarray,
        camera_frame_id: str,
        plan_actions: np.ndarray,
        predicted_cost: float,
        goal_distance: float,
    ) -> Image:
        """current | goal with the numbers written on it, in the camera's frame."""
        lines = [
            f"goal distance {goal_distance:.4g}" if math.isfinite(goal_distance) else "no goal",
            f"predicted cost {predicted_cost:.4g}",
            "a0 " + " ".join(f"{x:+.2f}" for x in plan_actions[0]),
        ]
        rgb = side_by_side(frame, self.goal if math.isfinite(goal_distance) else None, lines)  # an expired goal: grey
        return codecs.make_image(Image, rgb, "rgb8", stamp_ns, camera_frame_id)

    @staticmethod
    def _scalar(stamp_ns: int, frame_id: str, value: float) -> Vector3Stamped:
        msg = Vector3Stamped()
        msg.header.stamp, msg.header.frame_id = time_msg(stamp_ns), frame_id
        msg.vector.x = float(value)
        return msg
