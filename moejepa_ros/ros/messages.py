"""Message types and QoS profiles shared by the nodes, and the `~/plan` message layout.

REP-2003: image publishers are reliable, like a camera driver, so default-QoS subscribers and
`ros2 bag record` get every frame; the camera subscription is depth-1 best-effort (sensor data),
which matches both kinds of publisher and keeps only the newest frame instead of queueing stale ones.
planner_node hears the goal image through a latched (transient-local) subscription, so a planner that
starts late still receives the current goal, and a volatile one, so publishers with default QoS
(`ros2 topic pub`) reach it too. `qos` makes every profile overridable from parameters.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from moejepa_ros import codecs


def _qos(depth: int, reliable: bool, latched: bool = False) -> QoSProfile:
    """A keep-last profile: `reliable` or best effort, `latched` (transient local) or volatile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


#: Newest-frame-only camera subscription (also fine for a reliable publisher).
CAMERA_QOS = _qos(1, reliable=False)
#: What a camera driver / the simulator publishes: reliable (REP-2003), a short queue.
IMAGE_PUB_QOS = _qos(2, reliable=True)
#: Latched goal image: late joiners get the current goal.
LATCHED_QOS = _qos(1, reliable=True, latched=True)
#: Per-episode results: latched with a deep history, so a late collector still gets every one.
RESULTS_QOS = _qos(1000, reliable=True, latched=True)
#: Commands, rewards, episode markers: reliable, a small queue.
COMMAND_QOS = _qos(10, reliable=True)


def action_msg_class(action_type: str) -> type:
    """The rclpy message class of an `action_type` parameter value (a registered command type)."""
    try:
        package, _, name = codecs.command_type(action_type).name.split("/")
    except codecs.CodecError as e:
        raise ValueError(f"action_type: {e}") from None
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"action_type {action_type!r}: no message class {package}/msg/{name} here ({e})") from None


def stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time → integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def plan_to_msg(actions: np.ndarray, predicted_cost: float) -> Float32MultiArray:
    """`~/plan`: data = [predicted_cost, a_0 ... a_{H-1}] with layout dims horizon × action.

    `layout.data_offset = 1`: the one leading element is the plan's predicted cost (lower is
    better); the planned actions follow row-major, `actions[h, i] = data[1 + h*A + i]`.
    """
    a = np.asarray(actions, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"plan actions must be [H, A], got shape {a.shape}")
    h, n = a.shape
    msg = Float32MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label="horizon", size=h, stride=h * n),
        MultiArrayDimension(label="action", size=n, stride=n),
    ]
    msg.layout.data_offset = 1
    msg.data = np.concatenate([np.float32([predicted_cost]), a.reshape(-1)]).tolist()
    return msg


def no_plan_msg(action_dim: int) -> Float32MultiArray:
    """`~/plan` beside a safety zero (no image, no goal, a failed or non-finite plan, a stop): horizon 0
    and a NaN cost, so a listener tells it from a planned zero, whose plan has H rows."""
    return plan_to_msg(np.zeros((0, action_dim), np.float32), float("nan"))


def msg_to_plan(msg: Float32MultiArray) -> tuple[np.ndarray, float]:
    """Inverse of `plan_to_msg`: (actions [H, A], predicted_cost)."""
    data = np.asarray(msg.data, dtype=np.float32)
    h, n = msg.layout.dim[0].size, msg.layout.dim[1].size
    off = msg.layout.data_offset
    return data[off : off + h * n].reshape(h, n), float(data[0]) if off else float("nan")
