"""Real rosbag2 files for the data tests, written with rosbags: any records, and a robot's bag (a camera,
/cmd_vel Twist, optionally /odom) together with the episodes the reader must make of it."""

import math

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from moejepa_ros.codecs import action_to_msg, make_image, new_message
from moejepa_ros.codecs.messages import set_stamp

TS = get_typestore(Stores.ROS2_KILTED)
T = TS.types
MS = 1_000_000
CAMERA, CMD, ODOM = "/camera/color/image_raw", "/cmd_vel", "/odom"
ROBOT_TYPES = {CAMERA: "sensor_msgs/msg/Image", CMD: "geometry_msgs/msg/Twist", ODOM: "nav_msgs/msg/Odometry"}
README_TOPICS = {  # the README's robot recipe, as data.topics.* overrides
    "image_topic": CAMERA,
    "action_topic": CMD,
    "action_type": "geometry_msgs/msg/Twist",
    "reward_topic": None,
}


def write_bag(path, records, types, storage="mcap", connections=None):
    """records: (topic, log_ns, msg object or raw bytes); a message is serialised with rosbags.
    `connections` {topic: add_connection keyword arguments} declares topics by hand (a definition, a
    serialisation format), replacing `types`' entry for that topic."""
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
    w.open()
    conns = {t: w.add_connection(t, ty, typestore=TS) for t, ty in types.items() if t not in (connections or {})}
    for t, kw in (connections or {}).items():
        conns[t] = w.add_connection(t, typestore=TS, **kw)
    for topic, t, msg in sorted(records, key=lambda r: r[1]):
        raw = msg if isinstance(msg, (bytes, bytearray, memoryview)) else TS.serialize_cdr(msg, types[topic])
        w.write(conns[topic], t, raw)
    w.close()
    return path


def frame(i, h=32, w=32):
    return np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)


def quaternion(yaw: float):
    return T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))


def pose_msg(msgtype: str, x: float, y: float, yaw: float, stamp_ns: int):
    """A nav_msgs/msg/Odometry, geometry_msgs/msg/PoseStamped or PoseWithCovarianceStamped (a map localiser's,
    e.g. AMCL's) at planar pose (x, y, yaw)."""
    m = new_message(T[msgtype])
    set_stamp(m, stamp_ns, "odom")
    pose = m.pose
    if msgtype == "nav_msgs/msg/Odometry":
        m.child_frame_id = "base_link"
        m.pose.covariance = m.twist.covariance = np.zeros(36)
        pose = m.pose.pose
    elif msgtype == "geometry_msgs/msg/PoseWithCovarianceStamped":
        m.pose.covariance = np.zeros(36)
        pose = m.pose.pose
    pose.position.x, pose.position.y, pose.orientation = x, y, quaternion(yaw)
    return m


def robot_bag(
    path, encoding="rgb8", lengths=(12, 8), dt_ms=50, topics=(CAMERA, CMD), odom_type=ROBOT_TYPES[ODOM], extra=None
):
    """A robot's bag: the camera every `dt_ms` (header stamps, logged 3 ms late) in runs of `lengths` frames
    2 s apart, a Twist on /cmd_vel 1 ms after each image and, if /odom is in `topics`, its pose (`odom_type`)
    10 ms before each image; `extra` {topic: type} adds empty topics. Returns (bag, per-episode truth dicts
    with frames, actions [linear.x, angular.z], state [x, y, yaw] and stamps_ns)."""
    recs, truth, t = [], [], 1000 * MS
    for e, n in enumerate(lengths):
        ep = {"frames": [], "actions": [], "state": [], "stamps_ns": []}
        for i in range(n):
            k = 100 * e + i
            rgb = frame(k, 24, 40)
            a = np.array([0.05 * k, -0.01 * k], np.float32)
            s = np.array([0.1 * k, -0.2 * k, math.remainder(0.7 * k - 3.1, math.tau)], np.float32)
            pixels = rgb if encoding == "rgb8" else np.ascontiguousarray(rgb[..., ::-1])
            recs.append((CAMERA, t + 3 * MS, make_image(T[ROBOT_TYPES[CAMERA]], pixels, encoding, t, "camera")))
            tw = action_to_msg(a, new_message(T[ROBOT_TYPES[CMD]]), fields=["linear.x", "angular.z"])
            recs.append((CMD, t + MS, tw))
            recs.append((ODOM, t - 10 * MS, pose_msg(odom_type, *map(float, s), t - 10 * MS)))
            for key, v in zip(ep, (rgb, a, s, t)):
                ep[key].append(v)
            t += dt_ms * MS
        truth.append({k: np.stack(v) if k != "stamps_ns" else np.array(v, np.int64) for k, v in ep.items()})
        t += 2000 * MS
    types = {tp: ROBOT_TYPES[tp] for tp in topics} | ({ODOM: odom_type} if ODOM in topics else {}) | dict(extra or {})
    return write_bag(path, [r for r in recs if r[0] in topics], types), truth
