"""ROS message ⇄ numpy codecs: camera images in, action commands out.

One set of functions for live rclpy messages and for `rosbags` messages read from a bag
(same field names; rclpy stores byte sequences as ``array.array``/``bytes``, rosbags as
numpy arrays and builds messages as dataclasses). Nothing here imports rclpy, rosbags or
cv_bridge; OpenCV is imported lazily.

- :mod:`.image` raw ``Image`` ⇄ array, any image → RGB for the model
- :mod:`.compressed` ``CompressedImage`` (jpeg, png, compressedDepth)
- :mod:`.pixels` the size limit and the fixed depth / mono16 ranges (``GreyRanges``)
- :mod:`.messages` building messages, stamps, type names
- :mod:`.action` action vectors: validation, clamping
- :mod:`.commands` the registry of command types (keyed by full ROS type name), action ⇄ message

Every malformed input raises :class:`CodecError` (a ``ValueError``) whose message names the
field and the offending values, so a node can drop the message with one ``except`` and a
useful log line — never a crash deep in numpy and never a silently wrong image.
"""

from moejepa_ros.codecs.action import clamp_action
from moejepa_ros.codecs.commands import (
    COMMAND_TYPE_NAMES,
    COMMAND_TYPES,
    DEFAULT_TWIST_FIELDS,
    TWIST_FIELDS,
    CommandOptions,
    CommandType,
    action_size,
    action_to_msg,
    command_type,
    command_type_of,
    msg_to_action,
    register_command_type,
)
from moejepa_ros.codecs.compressed import compress_image, make_compressed
from moejepa_ros.codecs.errors import CodecError
from moejepa_ros.codecs.image import ENCODINGS, fill_image, image_to_array, image_to_rgb, make_image
from moejepa_ros.codecs.messages import is_rosbags, new_message, set_stamp, type_name
from moejepa_ros.codecs.pixels import DEPTH_RANGE, MAX_SIDE, MONO16_RANGE, GreyRanges

__all__ = [
    "CodecError",
    "ENCODINGS",
    "MAX_SIDE",
    "GreyRanges",
    "DEPTH_RANGE",
    "MONO16_RANGE",
    "image_to_array",
    "image_to_rgb",
    "fill_image",
    "make_image",
    "compress_image",
    "make_compressed",
    "new_message",
    "set_stamp",
    "is_rosbags",
    "type_name",
    "clamp_action",
    "action_to_msg",
    "msg_to_action",
    "action_size",
    "TWIST_FIELDS",
    "DEFAULT_TWIST_FIELDS",
    "CommandType",
    "CommandOptions",
    "COMMAND_TYPES",
    "COMMAND_TYPE_NAMES",
    "register_command_type",
    "command_type",
    "command_type_of",
]
