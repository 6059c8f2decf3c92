"""The state topic's message types and how each becomes a float32 state vector (with its names).

State is never model input: probes and evaluation use it (e.g. how well the latent holds the
robot's pose). A robot's odometry or pose becomes planar ``[x, y, yaw]``, yaw from the orientation
quaternion; an arm's ``sensor_msgs/JointState`` its joint angles in the message's order (positions only:
the goal test compares angles); a simulator's `Float32MultiArray` is taken as it is (unnamed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

POSE_NAMES = ("x", "y", "yaw")


@dataclass(frozen=True)
class StateType:
    """How one message type becomes a state vector, and the names of its entries (None: unnamed)."""

    decode: Callable[[object], np.ndarray]
    names: tuple[str, ...] | None


def yaw(q) -> float:
    """Rotation about z of a quaternion (x, y, z, w), in radians in (-pi, pi]."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _planar(pose) -> np.ndarray:
    return np.array([pose.position.x, pose.position.y, yaw(pose.orientation)], np.float32)


STATE_TYPES: dict[str, StateType] = {
    "std_msgs/msg/Float32MultiArray": StateType(lambda m: np.asarray(m.data, np.float32).reshape(-1), None),
    "nav_msgs/msg/Odometry": StateType(lambda m: _planar(m.pose.pose), POSE_NAMES),
    "geometry_msgs/msg/PoseStamped": StateType(lambda m: _planar(m.pose), POSE_NAMES),
    # a localiser's pose in the map frame (AMCL's /amcl_pose): one frame for every drive, what the place net needs
    "geometry_msgs/msg/PoseWithCovarianceStamped": StateType(lambda m: _planar(m.pose.pose), POSE_NAMES),
    "sensor_msgs/msg/JointState": StateType(lambda m: np.asarray(m.position, np.float32).reshape(-1), None),
}
