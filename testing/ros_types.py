"""The two flavours of ROS message the codecs take: rclpy's generated classes and rosbags' pure-Python ones.

Importing this skips the importing test module where either library is missing.
"""

import pytest

serialization = pytest.importorskip("rclpy.serialization")
typesys = pytest.importorskip("rosbags.typesys")
#: rosbags' message types for the ROS distribution this package targets.
TS = typesys.get_typestore(typesys.Stores.ROS2_KILTED)


def flavours(name: str) -> dict[str, type]:
    """{"rclpy": class, "rosbags": class} of message type `name`, e.g. "sensor_msgs/msg/Image"."""
    package, _, cls = name.rpartition("/")
    return {"rclpy": getattr(pytest.importorskip(package.replace("/", ".")), cls), "rosbags": TS.types[name]}
