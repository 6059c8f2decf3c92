"""Message plumbing shared by every codec, for rclpy and rosbags classes alike: building
default-valued messages, header stamps, field access, byte sequences and full type names."""

from __future__ import annotations

import array
import dataclasses
import importlib
import re
import sys
from typing import Any

import numpy as np

from moejepa_ros.codecs.errors import CodecError

#: builtin_interfaces Time/Duration ``.sec`` is int32.
MAX_SEC = 2**31

_NP_DTYPE = re.compile(r"np\.dtype\[np\.(\w+)\]")


def is_rosbags(msg: Any) -> bool:
    """rosbags messages are dataclasses whose byte/number sequences are numpy arrays."""
    return dataclasses.is_dataclass(msg)


def type_name(msg: Any) -> str:
    """The full ROS type name of a message (``geometry_msgs/msg/Twist``), rclpy or rosbags."""
    name = getattr(msg, "__msgtype__", None)  # rosbags classes carry it
    if isinstance(name, str):
        return name
    cls = type(msg)
    parts = cls.__module__.split(".")  # rclpy: geometry_msgs.msg._twist
    if len(parts) >= 2 and parts[1] in ("msg", "srv", "action"):
        return f"{parts[0]}/{parts[1]}/{cls.__name__}"
    return cls.__name__


def get_field(msg: Any, name: str, kind: str) -> Any:
    """``msg.<name>``, or a CodecError naming the ``kind`` of message and the missing field."""
    try:
        return getattr(msg, name)
    except AttributeError:
        raise CodecError(f"{kind} message {type(msg).__name__} has no field {name!r}") from None


def as_u8(data: Any, field: str) -> np.ndarray:
    """View a message byte sequence as a 1-D uint8 array (zero-copy for buffers).

    Accepts bytes / array.array / numpy / list, as rclpy and rosbags store them.
    """
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise CodecError(f"{field} has dtype {data.dtype}, expected uint8")
        return data.reshape(-1)
    if isinstance(data, array.array) and data.itemsize != 1:
        raise CodecError(f"{field} is array.array({data.typecode!r}), expected bytes")
    if isinstance(data, (array.array, bytes, bytearray, memoryview)):
        try:
            return np.frombuffer(data, dtype=np.uint8)
        except (ValueError, TypeError, BufferError) as exc:
            raise CodecError(f"{field} is not a readable byte buffer: {exc}") from None
    if isinstance(data, (list, tuple)):
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise CodecError(f"{field} is not a flat list of bytes: {exc}") from None
        if arr.ndim > 1 or (arr.size and (arr.dtype.kind not in "iub" or arr.min() < 0 or arr.max() > 255)):
            raise CodecError(f"{field} holds values outside 0..255")
        return arr.astype(np.uint8).reshape(-1)
    raise CodecError(f"{field} has unsupported type {type(data).__name__}")


def set_stamp(msg: Any, stamp_ns: int | None, frame_id: str | None = None) -> None:
    """Set ``header.stamp`` (integer ns, when given) and ``header.frame_id`` (when given)."""
    if stamp_ns is not None:
        stamp_ns = int(stamp_ns)
        if not 0 <= stamp_ns < MAX_SEC * 1_000_000_000:
            raise CodecError(f"stamp_ns={stamp_ns} is outside 0..2**31 s (builtin_interfaces/Time.sec is int32)")
        msg.header.stamp.sec = stamp_ns // 1_000_000_000
        msg.header.stamp.nanosec = stamp_ns % 1_000_000_000
    if frame_id is not None:
        msg.header.frame_id = str(frame_id)


def _resolve_type(owner: type, name: str) -> type:
    """Find a rosbags nested message class by its generated name (``pkg__msg__Name``)."""
    mod = sys.modules.get(owner.__module__)
    cls = getattr(mod, name, None) if mod is not None else None
    if cls is None:
        for modname, m in list(sys.modules.items()):
            if modname.startswith("rosbags") and m is not None and hasattr(m, name):
                cls = getattr(m, name)
                break
    if cls is None:
        raise CodecError(f"cannot resolve message type {name!r} used by {owner.__name__}")
    return cls


def _default_for(owner: type, annotation: Any) -> Any:
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if ann == "int":
        return 0
    if ann == "float":
        return 0.0
    if ann == "str":
        return ""
    if ann == "bool":
        return False
    if ann.startswith("list["):
        return []
    if ann.startswith("np.ndarray") or ann.startswith("ndarray"):
        m = _NP_DTYPE.search(ann)
        return np.zeros(0, dtype=np.dtype(m.group(1)) if m else np.uint8)
    return new_message(_resolve_type(owner, ann))


def new_message(msg_cls: type) -> Any:
    """A default-valued instance of an rclpy or rosbags message class.

    rosbags classes are dataclasses that need every field at construction; defaults are
    built recursively from their annotations (fixed-size arrays come out empty).
    """
    if not dataclasses.is_dataclass(msg_cls):
        return msg_cls()
    kwargs = {}
    for f in dataclasses.fields(msg_cls):
        if f.name.startswith("__"):
            continue
        kwargs[f.name] = _default_for(msg_cls, f.type)
    return msg_cls(**kwargs)


def element_type(msg: Any, field: str) -> type:
    """Class of the elements of a message's list field (e.g. JointTrajectory.points)."""
    cls = type(msg)
    if dataclasses.is_dataclass(cls):
        ann = {f.name: f.type for f in dataclasses.fields(cls)}[field]
        inner = re.fullmatch(r"list\[(\w+)\]", str(ann))
        if not inner:
            raise CodecError(f"{cls.__name__}.{field} has unexpected annotation {ann!r}")
        return _resolve_type(cls, inner.group(1))
    # rclpy: field types like 'sequence<trajectory_msgs/JointTrajectoryPoint>'
    spec = cls.get_fields_and_field_types()[field]
    inner = re.search(r"<([\w/]+)", spec)
    if not inner:
        raise CodecError(f"{cls.__name__}.{field} has unexpected type {spec!r}")
    pkg, name = inner.group(1).split("/")[0], inner.group(1).split("/")[-1]
    return getattr(importlib.import_module(f"{pkg}.msg"), name)
