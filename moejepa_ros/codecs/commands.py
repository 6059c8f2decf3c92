"""Command message types: one registry, keyed by the full ROS type name, of how an action
vector is written into a command message and read back.

Each :class:`CommandType` holds its encode/decode, the named fields an action may fill and their
one default, whether it is stamped, and its aliases. planner_node, sim_node, the node parameters,
the bag topics config, the bag reader and the rollout writer all look types up here, so adding a
command type is one :func:`register_command_type` call (plus its test). Messages are matched by
their type name, on rclpy and rosbags classes alike, so look-alikes (TwistWithCovariance) are
refused rather than half-filled.
"""

from __future__ import annotations

import array
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from moejepa_ros.codecs.action import as_action, clip_to_bounds, to_float32
from moejepa_ros.codecs.errors import CodecError
from moejepa_ros.codecs.messages import MAX_SEC, element_type, is_rosbags, new_message, set_stamp, type_name

#: Every Twist field, in ROS order; Twist and TwistStamped actions fill a selection of them.
TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")
#: The one default selection: a differential-drive base (forward speed, yaw rate), as on /cmd_vel.
DEFAULT_TWIST_FIELDS = ("linear.x", "angular.z")
#: JointTrajectoryPoint fields an action may fill.
POINT_FIELDS = ("positions", "velocities")


@dataclass(frozen=True)
class CommandOptions:
    """Per-call settings; each command type reads those it needs and ignores the rest."""

    fields: tuple[str, ...] = ()  # the named fields the action fills, already checked (types with fields)
    joint_names: Sequence[str] | str | None = None
    point_field: str = "positions"
    time_from_start_s: float = 0.0


@dataclass(frozen=True)
class CommandType:
    """One command message type (see the module docstring)."""

    name: str  # full ROS type name, the registry key: "geometry_msgs/msg/Twist"
    encode: Callable[[Any, np.ndarray, CommandOptions], None]  # write a finite float64 action into msg
    decode: Callable[[Any, int, CommandOptions], np.ndarray]  # read action_dim values back
    size: Callable[[Any, CommandOptions], int]  # action dims a recorded message holds (bag reading)
    stamped: bool = False  # header.stamp is set from stamp_ns
    fields: tuple[str, ...] = ()  # named fields an action may fill, chosen with `fields=`
    default_fields: tuple[str, ...] = ()  # the selection used when none is given
    aliases: tuple[str, ...] = ()  # other accepted spellings (the node parameter's legacy names)

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def select_fields(self, fields: Sequence[str] | str | None, n: int | None) -> tuple[str, ...]:
        """The fields an ``n``-dim action fills: ``fields`` checked against the type's, or the default."""
        if not self.fields:
            return ()
        if fields is None:
            names = list(self.default_fields)
            if n is not None and len(names) != n:
                raise CodecError(
                    f"action has {n} dims but the default {self.short_name} fields {names} "
                    f"take {len(names)}; pass fields (known: {list(self.fields)})"
                )
            return tuple(names)
        names = split_names(fields)
        unknown = [f for f in names if f not in self.fields]
        if unknown:
            raise CodecError(f"fields {unknown} are not {self.short_name} fields (known: {list(self.fields)})")
        if len(set(names)) != len(names):
            raise CodecError(f"fields {names} has duplicates")
        if n is not None and len(names) != n:
            raise CodecError(f"fields {names} has {len(names)} names but the action has {n} dims")
        return tuple(names)


#: The registry: full ROS type name → CommandType.
COMMAND_TYPES: dict[str, CommandType] = {}


def register_command_type(ct: CommandType) -> CommandType:
    """Add a command type; its name and aliases must be new. Returns ``ct``."""
    if not re.fullmatch(r"\w+/msg/\w+", ct.name):
        raise CodecError(f"command type name {ct.name!r} is not a full ROS type name like 'geometry_msgs/msg/Twist'")
    taken = set(COMMAND_TYPE_NAMES)
    clash = [n for n in (ct.name, *ct.aliases) if n in taken]
    if clash:
        raise CodecError(f"command type {ct.name}: {clash} already registered")
    extra = [f for f in ct.default_fields if f not in ct.fields]
    if extra:
        raise CodecError(f"command type {ct.name}: default_fields {extra} are not in its fields {list(ct.fields)}")
    COMMAND_TYPES[ct.name] = ct
    return ct


def command_type(name: str) -> CommandType:
    """The command type of a full ROS type name, an alias, or the bare message name when one type has it
    (`Twist`, as bag configs wrote it), or a CodecError listing the known ones."""
    ct = COMMAND_TYPES.get(name) if isinstance(name, str) else None
    if ct is None:
        ct = next((c for c in COMMAND_TYPES.values() if name in c.aliases), None)
    if ct is None:
        bare = [c for c in COMMAND_TYPES.values() if c.short_name == name]
        ct = bare[0] if len(bare) == 1 else None
    if ct is None:
        raise CodecError(f"command type {name!r} is not registered (known: {', '.join(COMMAND_TYPE_NAMES)})")
    return ct


def command_type_of(msg: Any) -> CommandType:
    """The command type of a message instance (rclpy or rosbags), by its full type name."""
    name = type_name(msg)
    ct = COMMAND_TYPES.get(name)
    if ct is None:
        shorts = " / ".join(c.short_name for c in COMMAND_TYPES.values())
        raise CodecError(
            f"{name} is not a {shorts} message (look-alikes such as TwistWithCovariance "
            f"are not command types; register new ones with register_command_type)"
        )
    return ct


class _Spellings(Sequence):
    """Every accepted command type spelling (full names, each followed by its aliases), read live
    from the registry, so a type registered after import is a valid parameter choice too."""

    def _all(self) -> list[str]:
        return [n for ct in COMMAND_TYPES.values() for n in (ct.name, *ct.aliases)]

    def __getitem__(self, i):
        return self._all()[i]

    def __len__(self) -> int:
        return len(COMMAND_TYPES) + sum(len(ct.aliases) for ct in COMMAND_TYPES.values())

    def __repr__(self) -> str:
        return repr(tuple(self._all()))


#: Live view of the registry's names and aliases (e.g. the `action_type` parameter's choices).
COMMAND_TYPE_NAMES: Sequence[str] = _Spellings()


# ----------------------------------------------------------------------- action ⇄ message


def action_to_msg(
    action: Any,
    msg: Any,
    *,
    low: Any = None,
    high: Any = None,
    fields: Sequence[str] | None = None,
    joint_names: Sequence[str] | None = None,
    point_field: str = "positions",
    time_from_start_s: float = 0.0,
    stamp_ns: int | None = None,
) -> Any:
    """Write an action vector into a command message instance of a registered type; returns ``msg``.

    Twist/TwistStamped: the action fills ``fields`` (default :data:`DEFAULT_TWIST_FIELDS`); the
    other Twist components are set to 0. Float32/Float64MultiArray: ``data`` = the action (layout
    left as is: empty = flat). JointTrajectory: ``joint_names`` (argument or already on ``msg``) and
    exactly one point whose ``point_field`` ("positions" or "velocities") holds the action, reached
    at ``time_from_start_s``. Options a type does not use are ignored. If ``low``/``high`` are given
    the action is clamped first; NaN/inf always raise CodecError. ``stamp_ns`` sets ``header.stamp``
    on stamped types.
    """
    ct = command_type_of(msg)
    if (low is None) != (high is None):
        raise CodecError("give both low and high, or neither")
    a = as_action(action)
    if low is not None:
        a = clip_to_bounds(a, low, high)  # in float64, so float64 fields keep full precision
    ct.encode(msg, a, CommandOptions(ct.select_fields(fields, a.size), joint_names, point_field, time_from_start_s))
    if ct.stamped:
        set_stamp(msg, stamp_ns)
    return msg


def _check_action_dim(action_dim: Any) -> int:
    if isinstance(action_dim, bool) or not isinstance(action_dim, (int, np.integer)) or action_dim < 1:
        raise CodecError(f"action_dim={action_dim!r} must be a positive integer")
    return int(action_dim)


def msg_to_action(
    msg: Any,
    action_dim: int,
    fields: Sequence[str] | None = None,
    joint_names: Sequence[str] | None = None,
    point_field: str = "positions",
) -> np.ndarray:
    """Read an action vector (float32 ``[action_dim]``) back from a command message.

    The inverse of :func:`action_to_msg`; for JointTrajectory the first point is read and,
    if ``joint_names`` is given, reordered to that order. Non-finite values raise.
    """
    n = _check_action_dim(action_dim)
    ct = command_type_of(msg)
    out = ct.decode(msg, n, CommandOptions(ct.select_fields(fields, n), joint_names, point_field))
    what = f"{type(msg).__name__} action"
    return to_float32(as_action(out, what), what)


def action_size(msg: Any, fields: Sequence[str] | None = None, point_field: str = "positions") -> int:
    """How many action dims a recorded command message holds (its fields' count for Twist types)."""
    ct = command_type_of(msg)
    return int(ct.size(msg, CommandOptions(ct.select_fields(fields, None), None, point_field)))


# ----------------------------------------------------------------------- shared helpers


def split_names(value: Any) -> list[str]:
    """A list of names; a single string is read as comma-separated (handy for ROS params)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    names = list(value)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise CodecError(f"names must be strings, got {bad!r}")
    return names


def set_sequence(msg: Any, field: str, values: np.ndarray, dtype: Any) -> None:
    """Assign a numeric sequence the fast way for each message flavour (numpy / array.array)."""
    dtype = np.dtype(dtype)
    vals = to_float32(values, f"{type(msg).__name__}.{field}") if dtype == np.float32 else values.astype(dtype)
    if is_rosbags(msg):
        setattr(msg, field, np.array(vals, dtype=dtype))
    else:
        setattr(msg, field, array.array(dtype.char, vals.tobytes()))


def sequence_dtype(seq: Any, default: Any) -> np.dtype:
    """The element dtype of a message's numeric sequence (``default`` for a plain list)."""
    if isinstance(seq, np.ndarray):
        return seq.dtype
    if isinstance(seq, array.array):
        return np.dtype(seq.typecode)
    return np.dtype(default)


# ----------------------------------------------------------------------- built-in types


def _twist_of(msg: Any, root: str) -> Any:
    return getattr(msg, root) if root else msg


def _encode_twist(msg: Any, a: np.ndarray, o: CommandOptions, root: str = "") -> None:
    twist = _twist_of(msg, root)
    for f in TWIST_FIELDS:
        part, axis = f.split(".")
        setattr(getattr(twist, part), axis, 0.0)
    for f, v in zip(o.fields, a):
        part, axis = f.split(".")
        setattr(getattr(twist, part), axis, float(v))


def _decode_twist(msg: Any, n: int, o: CommandOptions, root: str = "") -> np.ndarray:
    twist = _twist_of(msg, root)
    return np.asarray([getattr(getattr(twist, f.split(".")[0]), f.split(".")[1]) for f in o.fields], np.float64)


def _twist_size(msg: Any, o: CommandOptions) -> int:
    return len(o.fields)


def _encode_array(msg: Any, a: np.ndarray, o: CommandOptions) -> None:
    dtype = sequence_dtype(msg.data, np.float32)
    if dtype.kind != "f":
        raise CodecError(f"{type(msg).__name__}.data holds {dtype}, expected a float array")
    set_sequence(msg, "data", a, dtype)


def _decode_array(msg: Any, n: int, o: CommandOptions) -> np.ndarray:
    out = np.asarray(msg.data, dtype=np.float64).reshape(-1)
    if out.size != n:
        raise CodecError(f"{type(msg).__name__}.data has {out.size} values, expected action_dim={n}")
    return out


def _array_size(msg: Any, o: CommandOptions) -> int:
    return int(np.asarray(msg.data).size)


def _check_point_field(point_field: str) -> None:
    if point_field not in POINT_FIELDS:
        raise CodecError(f"point_field={point_field!r} must be 'positions' or 'velocities'")


def _joint_names(msg: Any, joint_names: Sequence[str] | str | None, n: int) -> list[str]:
    names = split_names(joint_names) if joint_names is not None else list(msg.joint_names)
    if not names:
        raise CodecError("JointTrajectory needs joint_names (argument or msg.joint_names)")
    if len(names) != n:
        raise CodecError(f"joint_names {names} has {len(names)} names but the action has {n} dims")
    if len(set(names)) != len(names):
        raise CodecError(f"joint_names {names} has duplicates")
    return names


def _encode_trajectory(msg: Any, a: np.ndarray, o: CommandOptions) -> None:
    _check_point_field(o.point_field)
    names = _joint_names(msg, o.joint_names, a.size)
    t = o.time_from_start_s
    if not (np.isfinite(t) and 0 <= t < MAX_SEC):
        raise CodecError(f"time_from_start_s={t} must be in [0, 2**31) s")
    point = new_message(element_type(msg, "points"))
    set_sequence(point, o.point_field, a, np.float64)
    ns = int(round(float(t) * 1e9))
    point.time_from_start.sec = ns // 1_000_000_000
    point.time_from_start.nanosec = ns % 1_000_000_000
    msg.joint_names = names
    msg.points = [point]


def _decode_trajectory(msg: Any, n: int, o: CommandOptions) -> np.ndarray:
    _check_point_field(o.point_field)
    if len(msg.points) == 0:
        raise CodecError("JointTrajectory.points is empty")
    have = list(msg.joint_names)
    vals = np.asarray(getattr(msg.points[0], o.point_field), dtype=np.float64)
    if vals.size != len(have):
        raise CodecError(
            f"JointTrajectory.points[0].{o.point_field} has {vals.size} values for {len(have)} joint_names"
        )
    if o.joint_names is not None:
        want = split_names(o.joint_names)
        missing = [j for j in want if j not in have]
        if missing:
            raise CodecError(f"JointTrajectory lacks joints {missing} (has {have})")
        vals = vals[[have.index(j) for j in want]]
    if vals.size != n:
        raise CodecError(f"JointTrajectory gives {vals.size} values, expected action_dim={n}")
    return vals


def _trajectory_size(msg: Any, o: CommandOptions) -> int:
    _check_point_field(o.point_field)
    return len(getattr(msg.points[0], o.point_field)) if len(msg.points) else 0


for _ct in (
    CommandType(
        "geometry_msgs/msg/Twist",
        _encode_twist,
        _decode_twist,
        _twist_size,
        fields=TWIST_FIELDS,
        default_fields=DEFAULT_TWIST_FIELDS,
        aliases=("twist",),
    ),
    CommandType(
        "geometry_msgs/msg/TwistStamped",
        partial(_encode_twist, root="twist"),
        partial(_decode_twist, root="twist"),
        _twist_size,
        stamped=True,
        fields=TWIST_FIELDS,
        default_fields=DEFAULT_TWIST_FIELDS,
        aliases=("twist_stamped",),
    ),
    CommandType(
        "std_msgs/msg/Float32MultiArray", _encode_array, _decode_array, _array_size, aliases=("float32_multi_array",)
    ),
    CommandType("std_msgs/msg/Float64MultiArray", _encode_array, _decode_array, _array_size),
    CommandType(
        "trajectory_msgs/msg/JointTrajectory",
        _encode_trajectory,
        _decode_trajectory,
        _trajectory_size,
        stamped=True,
        aliases=("joint_trajectory",),
    ),
):
    register_command_type(_ct)
del _ct
