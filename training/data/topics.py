"""`TopicConfig`: which topics of a bag hold images, actions, rewards, episode markers and state,
of which types, and how actions are aligned to image times, so a robot's own bag (e.g.
`/camera/color/image_raw` + `/cmd_vel` Twist) reads without renaming anything. Action types are
`moejepa_ros.codecs` command types (full ROS type names, e.g. `geometry_msgs/msg/Twist`).

Alignment (image stamps s_0 < s_1 < ... within an episode):

- ``align="hold"`` (default, zero-order hold): the action for image i is the most recent action
  with stamp ``< s_{i+1}`` -- the command in force during the interval that starts at image i.
  A command issued right after an image (same or later stamp) thus belongs to that image, which
  is how a robot records (image, then the command computed from it), and how rollouts write it
  (the image and the action chosen after it share a stamp), so rollouts round-trip exactly. For
  an episode's last image the bound is ``s_last + median frame interval``. With episode markers
  an action never carries over from before the episode's marker; ``max_hold_s`` (if set) drops
  images whose held action is older than that before the image (counted in the read summary).
- ``align="nearest"``: the action whose stamp is nearest to s_i, if within ``tolerance_s``.

Images with no action under the rule are dropped and split the episode there; so are images whose stamp
is out of order or a duplicate (a longest increasing run of stamps is kept). Stamps are header stamps or
log times per ``stamp_source`` (see `training.data.clocks`). Rewards are
summed over ``[s_i, s_{i+1})`` (0 if none). State is the latest with stamp ``<= s_i`` in the
episode (NaN before the first); its types are in `training.data.state` (odometry becomes [x, y, yaw],
JointState the joint angles).

The image and action topics must be in a bag; the reward, episode and state topics are optional: one
that a bag lacks is named in the read's notes and reading goes on. `PRESETS` hold whole configs by
name (``data.topics.preset=robot``); keys given beside a preset override its values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from moejepa_ros.codecs import DEFAULT_TWIST_FIELDS, CodecError, CommandType, command_type

STAMP_SOURCES = ("auto", "header", "log")
IMAGE_TYPES = {"Image": "sensor_msgs/msg/Image", "CompressedImage": "sensor_msgs/msg/CompressedImage"}
PRESETS: dict[str, dict] = {
    # a robot's bag: camera + velocity commands, odometry as state (never model input), no reward or
    # episode topics (episodes split at gaps longer than split_gap_s)
    "robot": {
        "image_topic": "/camera/color/image_raw",
        "image_type": "Image",
        "action_topic": "/cmd_vel",
        "action_type": "geometry_msgs/msg/Twist",
        "reward_topic": None,
        "episode_topic": None,
        "state_topic": "/odom",
    },
    # an arm's bag (the reacher): camera + joint commands, joint angles as state (never model input)
    "arm": {
        "image_topic": "/camera/color/image_raw",
        "image_type": "Image",
        "action_topic": "/joint_commands",
        "action_type": "std_msgs/msg/Float32MultiArray",
        "reward_topic": None,
        "episode_topic": None,
        "state_topic": "/joint_states",
    },
}


def full_type(name: str, table: dict[str, str], field_name: str) -> str:
    """'Image' or 'sensor_msgs/msg/Image' -> the full ROS 2 type name; raise naming the field."""
    if name in table:
        return table[name]
    if name in table.values():
        return name
    raise ValueError(f"TopicConfig.{field_name}={name!r}: expected one of {sorted(table)}")


@dataclass(frozen=True)
class TopicConfig:
    """Topic names/types of a bag and the alignment rule (see the module docstring)."""

    image_topic: str = "/camera/image_raw"
    image_type: str = "Image"  # or "CompressedImage"
    action_topic: str = "/action"
    action_type: str = "std_msgs/msg/Float32MultiArray"  # a registered command type (codecs.COMMAND_TYPES)
    action_fields: tuple[str, ...] | None = None  # types with named fields (Twist): None = the type's default
    reward_topic: str | None = "/reward"
    episode_topic: str | None = "/episode"
    state_topic: str | None = "/state"
    split_gap_s: float | None = 1.0  # a gap between images longer than this starts an episode
    align: str = "hold"  # or "nearest"
    tolerance_s: float = 0.05  # for align="nearest"
    max_hold_s: float | None = None  # for align="hold": older held actions are stale
    stamp_source: str = "auto"  # "header" (where set, else log time), "log", or "auto" (training.data.clocks)
    clock_tolerance_s: float = 1.0  # a header clock whose median offset from the log time exceeds this disagrees
    min_episode_len: int = 2

    def __post_init__(self):
        self.validate()

    def validate(self) -> TopicConfig:
        full_type(self.image_type, IMAGE_TYPES, "image_type")
        ct = self.command_type
        if self.action_fields is not None:
            if not self.action_fields:
                raise ValueError("TopicConfig.action_fields is empty")
            if not ct.fields:
                raise ValueError(f"TopicConfig.action_fields={list(self.action_fields)}: {ct.name} has no named fields")
            try:
                ct.select_fields(self.action_fields, None)
            except CodecError as e:
                raise ValueError(f"TopicConfig.action_fields: {e}") from None
        for name in ("image_topic", "action_topic"):
            if not getattr(self, name) or not getattr(self, name).startswith("/"):
                raise ValueError(f"TopicConfig.{name}={getattr(self, name)!r}: need an absolute topic name")
        if self.align not in ("hold", "nearest"):
            raise ValueError(f"TopicConfig.align={self.align!r}: expected 'hold' or 'nearest'")
        if self.stamp_source not in STAMP_SOURCES:
            raise ValueError(f"TopicConfig.stamp_source={self.stamp_source!r}: expected one of {list(STAMP_SOURCES)}")
        if not self.clock_tolerance_s > 0:
            raise ValueError(f"TopicConfig.clock_tolerance_s={self.clock_tolerance_s}: must be > 0")
        if self.split_gap_s is not None and not self.split_gap_s > 0:
            raise ValueError(f"TopicConfig.split_gap_s={self.split_gap_s}: must be > 0 or None")
        if not self.tolerance_s >= 0:
            raise ValueError(f"TopicConfig.tolerance_s={self.tolerance_s}: must be >= 0")
        if self.max_hold_s is not None and not self.max_hold_s > 0:
            raise ValueError(f"TopicConfig.max_hold_s={self.max_hold_s}: must be > 0 or None")
        if self.min_episode_len < 1:
            raise ValueError(f"TopicConfig.min_episode_len={self.min_episode_len}: must be >= 1")
        return self

    @property
    def image_msgtype(self) -> str:
        return full_type(self.image_type, IMAGE_TYPES, "image_type")

    @property
    def command_type(self) -> CommandType:
        try:
            return command_type(self.action_type)
        except CodecError as e:
            raise ValueError(f"TopicConfig.action_type: {e}") from None

    @property
    def action_msgtype(self) -> str:
        return self.command_type.name

    @classmethod
    def robot(cls, **kw) -> TopicConfig:
        """A robot's bag (`PRESETS["robot"]`); keyword arguments override the preset's values."""
        return cls.from_dict({"preset": "robot", **kw})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["action_fields"] = None if self.action_fields is None else list(self.action_fields)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TopicConfig:
        """Fields by name; ``preset`` (a `PRESETS` name) supplies the values the other keys do not give."""
        d = dict(d)
        if (preset := d.pop("preset", None)) is not None:
            if preset not in PRESETS:
                raise ValueError(f"TopicConfig preset={preset!r}: expected one of {sorted(PRESETS)}")
            d = {**PRESETS[preset], **d}
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := set(d) - known:
            raise ValueError(f"TopicConfig: unknown keys {sorted(unknown)}; known {sorted(known | {'preset'})}")
        if d.get("action_fields") is not None:
            d["action_fields"] = tuple(d["action_fields"])
            # configs saved before the command registry held the Twist default for every type: drop it
            # where the type has no named fields
            if d["action_fields"] == DEFAULT_TWIST_FIELDS and not _named_fields(d.get("action_type", cls.action_type)):
                d["action_fields"] = None
        return cls(**d)


def _named_fields(action_type: str) -> tuple[str, ...]:
    """The command type's named fields, or () when it has none or is not registered (validate() says so)."""
    try:
        return tuple(command_type(action_type).fields)
    except CodecError:
        return ()
