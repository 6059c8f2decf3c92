"""Declared ROS parameters of the nodes: one table per node, descriptors, and pure helpers.

Every tunable is a `ParameterSpec` (name, default, description, range, read-only, choices);
`declare(node, specs)` turns the table into `ParameterDescriptor`s, so `ros2 param describe`
shows ranges and rqt can draw sliders. The planner's settings mirror `PlannerConfig` field
by field (`planner.<field>`, help and range from the field), and every registered objective's
declared options are `objectives.<name>.<option>` (`enabled`, `weight`, ...), as in nav2's MPPI
controller; `objective_plugins` imports out-of-tree objectives before they are declared. The
helpers that turn parameter values into a `PlannerConfig` dict or an objectives dict are plain
functions so they are testable without a node.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.parameter import Parameter

from moejepa_ros import codecs
from moejepa_ros.control.device import ENCODER_PRECISIONS
from moejepa_ros.planning.config import PlannerConfig
from moejepa_ros.planning.objectives import REGISTRY, build_objectives, load_plugins

ACTION_TYPE_DEFAULT = "geometry_msgs/msg/Twist"
_ACTION_TYPE_HELP = "command type {} `action`: a full ROS type name or a short alias"
IMAGE_TRANSPORTS = ("raw", "compressed")
CONTROL_TRIGGERS = ("frame", "timer")
_INT_MAX = 2**31 - 1
#: How a `configure_only` parameter changes (descriptor, README table).
CONFIGURE_ONLY_NOTE = "applied at configure; settable while unconfigured, e.g. after cleanup"


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter. `default=None` declares the type only (value optional)."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    low: float | None = None  # inclusive range (IntegerRange / FloatingPointRange)
    high: float | None = None
    choices: tuple[str, ...] = ()  # string enums, checked in `check_value`
    ptype: Parameter.Type | None = None  # needed when default is None
    configure_only: bool = False  # read at configure: changeable only while unconfigured (e.g. a model swap)

    @property
    def type(self) -> Parameter.Type:
        return self.ptype if self.ptype is not None else Parameter.Type.from_parameter_value(self.default)

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.choices:
            d.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.configure_only:
            d.additional_constraints = "; ".join(filter(None, (d.additional_constraints, CONFIGURE_ONLY_NOTE)))
        if self.low is not None and self.high is not None:
            if self.type == Parameter.Type.INTEGER:
                d.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high), step=0)]
            elif self.type == Parameter.Type.DOUBLE:
                d.floating_point_range = [
                    FloatingPointRange(from_value=float(self.low), to_value=float(self.high), step=0.0)
                ]
        return d


def check_value(spec: ParameterSpec, value: Any) -> str | None:
    """The reason `value` is bad for `spec` (choices, finiteness, array range), or None."""
    if spec.choices and value not in spec.choices:
        return f"{spec.name}={value!r} is invalid: must be one of {list(spec.choices)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{spec.name}={value!r} is invalid: must be finite"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], float):
        if not all(math.isfinite(v) for v in value):
            return f"{spec.name}={list(value)!r} is invalid: every element must be finite"
    return None


# ------------------------------------------------------------------------ planner_node
def _planner_specs() -> list[ParameterSpec]:
    """`planner.<field>` for every `PlannerConfig` field: default, help, range and choices from the field."""
    default = PlannerConfig()
    return [
        ParameterSpec(
            f"planner.{f.name}",
            getattr(default, f.name),
            "planner: " + f.metadata["help"],
            low=f.metadata["low"],
            high=f.metadata["high"],
            choices=tuple(f.metadata["choices"]),
        )
        for f in dataclasses.fields(PlannerConfig)
    ]


def objective_specs() -> list[ParameterSpec]:
    """`objectives.<name>.<option>` for every registered objective (plugins included), from its declarations."""
    return [
        ParameterSpec(
            f"objectives.{name}.{key}", opt.default, opt.help, low=opt.low, high=opt.high, choices=opt.choices
        )
        for name, cls in REGISTRY.items()
        for key, opt in cls.declared().items()
    ]


OBJECTIVE_PLUGINS = ParameterSpec(
    "objective_plugins",
    None,
    "Python modules imported before the objectives are declared (out-of-tree "
    "objectives register themselves and appear as objectives.<name>.*)",
    read_only=True,
    ptype=Parameter.Type.STRING_ARRAY,
)


def _command_specs(topic_verb: str, twist_role: str) -> list[ParameterSpec]:
    """`action_type`, `twist_fields`, `joint_names`: the command's type and fields, for both nodes."""
    return [
        ParameterSpec(
            "action_type",
            ACTION_TYPE_DEFAULT,
            _ACTION_TYPE_HELP.format(topic_verb),
            read_only=True,
            choices=codecs.COMMAND_TYPE_NAMES,
        ),
        ParameterSpec(
            "twist_fields", list(codecs.DEFAULT_TWIST_FIELDS), f"Twist fields {twist_role}, in order", read_only=True
        ),
        ParameterSpec(
            "joint_names",
            None,
            "JointTrajectory joint names (one per action dimension)",
            read_only=True,
            ptype=Parameter.Type.STRING_ARRAY,
        ),
    ]


_NODE_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("checkpoint", "", "path of the world-model .safetensors checkpoint", configure_only=True),
    ParameterSpec("device", "auto", "torch device: auto | cpu | cuda | cuda:<i>", configure_only=True),
    ParameterSpec(
        "backend",
        "torch",
        "runs the encoder and rollout: torch, or onnxruntime (the checkpoint's ONNX files from "
        "`moejepa-train export --format onnx`; CUDA provider on a cuda device)",
        configure_only=True,
        choices=("torch", "onnxruntime"),
    ),
    ParameterSpec(
        "encoder_precision",
        "fp32",
        "torch backend: autocast the encoder to fp16 (cuda only) or bf16 (cuda cards that have it, and cpu)",
        configure_only=True,
        choices=ENCODER_PRECISIONS,
    ),
    ParameterSpec(
        "cuda_graphs",
        False,
        "torch backend on a cuda device: replay the planning rollouts as captured CUDA graphs (one per batch "
        "shape; eager again with a warning if a capture fails); off until measured on a card; no effect on cpu",
        configure_only=True,
    ),
    ParameterSpec(
        "image_size",
        0,
        "model input size in pixels (square); 0 = the checkpoint's",
        configure_only=True,
        low=0,
        high=4096,
    ),
    ParameterSpec(
        "frame_stack",
        0,
        "frames per observation; 0 = the checkpoint's (must match it)",
        configure_only=True,
        low=0,
        high=64,
    ),
    ParameterSpec(
        "image_transport",
        "raw",
        "subscribe `image` (raw) or `image/compressed`",
        read_only=True,
        choices=IMAGE_TRANSPORTS,
    ),
    *_command_specs("published on", "the action dimensions fill"),
    ParameterSpec(
        "command_frame_id",
        "base_link",
        "frame_id of stamped commands and of the debug plan (REP-105); never the camera's",
        read_only=True,
    ),
    ParameterSpec(
        "debug.enabled",
        False,
        "publish the debug view: ~/plan_path or ~/plan_trajectory, ~/goal_distance, ~/predicted_cost, "
        "~/debug_image (costs time in the planning thread)",
        read_only=True,
    ),
    ParameterSpec("debug.image_rate", 2.0, "the most ~/debug_image messages per second", low=0.01, high=1000.0),
    ParameterSpec(
        "action_low", None, "lower action bounds; unset = the checkpoint's", ptype=Parameter.Type.DOUBLE_ARRAY
    ),
    ParameterSpec(
        "action_high", None, "upper action bounds; unset = the checkpoint's", ptype=Parameter.Type.DOUBLE_ARRAY
    ),
    ParameterSpec(
        "depth_range",
        None,
        "depth images (16UC1 mm, 32FC1 m) map [lo, hi] metres to 0..255; unset = the checkpoint's (data.depth_range)",
        read_only=True,
        ptype=Parameter.Type.DOUBLE_ARRAY,
    ),
    ParameterSpec(
        "mono16_range",
        None,
        "mono16 images map [lo, hi] raw counts to 0..255; unset = the checkpoint's (data.mono16_range)",
        read_only=True,
        ptype=Parameter.Type.DOUBLE_ARRAY,
    ),
    ParameterSpec("control_rate", 30.0, "control rate in Hz (the most plans per second)", low=0.1, high=1000.0),
    ParameterSpec(
        "control_trigger",
        "frame",
        "frame: plan as each new frame arrives, capped at control_rate; "
        "timer: plan every control period on the newest frames",
        choices=CONTROL_TRIGGERS,
    ),
    ParameterSpec("camera_timeout", 0.5, "seconds without an image before the zero command", low=0.01, high=3600.0),
    ParameterSpec("goal_timeout", 0.0, "seconds a goal image stays valid; 0 = forever", low=0.0, high=1e6),
    ParameterSpec(
        "goal_progress_window",
        45,
        "/diagnostics goes WARN when the goal distance has not dropped by planner.stall_progress for this "
        "many replans (beyond planner.stall_min_distance); 0 = off",
        low=0,
        high=100000,
    ),
    ParameterSpec("diagnostics_period", 1.0, "seconds between /diagnostics messages", low=0.05, high=3600.0),
    ParameterSpec(
        "hardware_id",
        "",
        "hardware_id of the node's /diagnostics statuses (e.g. the robot or compute unit); empty = the node's "
        "fully qualified name",
        read_only=True,
    ),
    ParameterSpec("num_threads", 1, "torch intra-op threads of the planning thread", read_only=True, low=1, high=256),
    ParameterSpec("autostart", True, "configure and activate on start (no lifecycle manager needed)", read_only=True),
    OBJECTIVE_PLUGINS,
)


def planner_node_specs() -> tuple[ParameterSpec, ...]:
    """planner_node's parameters; the objectives' are generated from the registry as it is now."""
    return (*_NODE_SPECS, *_planner_specs(), *objective_specs())


def declare_planner_node(node: Any) -> tuple[ParameterSpec, ...]:
    """Declare `objective_plugins`, import those modules (their objectives register), then declare
    every other planner_node parameter; returns the node's specs (plugins' objectives included)."""
    declare(node, [OBJECTIVE_PLUGINS])
    load_plugins(values(node, [OBJECTIVE_PLUGINS])[OBJECTIVE_PLUGINS.name] or [])
    specs = planner_node_specs()
    declare(node, [s for s in specs if s is not OBJECTIVE_PLUGINS])
    return specs


PLANNER_NODE_SPECS = planner_node_specs()  # with the in-tree objectives (the README table, tests)

# --------------------------------------------------------------------------- sim_node
SIM_NODE_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("env", "two_rooms", "moejepa_ros.sim env name (two_rooms, dmc:<domain>_<task>, ...)", read_only=True),
    ParameterSpec("mode", "goal", "env mode passed to make_env (e.g. goal); empty = env default", read_only=True),
    ParameterSpec(
        "seed", 0, "seed of the first episode (episode i uses seed + i)", read_only=True, low=0, high=_INT_MAX
    ),
    ParameterSpec("rate", 30.0, "simulation steps (and images) per second", low=0.1, high=10000.0),
    ParameterSpec(
        "max_episode_steps", 200, "steps before an episode is truncated; 0 = the env's", low=0, high=_INT_MAX
    ),
    ParameterSpec("episodes", 0, "stop stepping after this many episodes; 0 = run forever", low=0, high=_INT_MAX),
    *_command_specs("subscribed on", "read into action dimensions"),
    ParameterSpec(
        "action_timeout", 0.0, "seconds an action is held before reverting to zero; 0 = hold", low=0.0, high=3600.0
    ),
    ParameterSpec("publish_clock", False, "publish /clock (sim time = steps / rate)", read_only=True),
    ParameterSpec("frame_id", "camera", "frame_id of published images", read_only=True),
    ParameterSpec(
        "min_result_subscribers",
        0,
        "hold the first episode until ~/episode_result has this many subscribers (demo collectors)",
        read_only=True,
        low=0,
        high=1000,
    ),
    ParameterSpec(
        "wait_for_action",
        True,
        "republish the first frame without stepping until a first action arrives",
        read_only=True,
    ),
    ParameterSpec(
        "lockstep",
        False,
        "step only once the planner has answered the newest frame (a stamped action carrying "
        "its stamp, or any action after it for unstamped types); `rate` is then an upper bound",
        read_only=True,
    ),
    ParameterSpec(
        "lockstep_timeout",
        1.0,
        "lockstep: republish the held frame when no answer came within this many seconds",
        low=0.01,
        high=3600.0,
    ),
    ParameterSpec(
        "episode_hold_frames",
        0,
        "lockstep: republish each episode's first frame this many extra times (each answered) "
        "before stepping, so the planner's frame stack holds only the new episode",
        read_only=True,
        low=0,
        high=100,
    ),
)


def declare(node: Any, specs: Iterable[ParameterSpec]) -> None:
    """Declare every spec on `node` with its descriptor; values may come from YAML / -p."""
    for s in specs:
        node.declare_parameter(s.name, s.type if s.default is None else s.default, s.descriptor())


def values(node: Any, specs: Iterable[ParameterSpec]) -> dict[str, Any]:
    """Current values by name; a type-only parameter that was never set reads as None."""
    out = {}
    for s in specs:
        p = node.get_parameter_or(s.name, None)
        out[s.name] = None if p is None or p.type_ == Parameter.Type.NOT_SET else p.value
    for k, v in out.items():  # rclpy returns array.array for numeric arrays
        if v is not None and not isinstance(v, (str, bool, int, float, list)):
            out[k] = list(v)
    return out


def planner_dict(vals: Mapping[str, Any]) -> dict[str, Any]:
    """`planner.<field>` values → a `PlannerConfig.from_dict` input."""
    return {k[len("planner.") :]: v for k, v in vals.items() if k.startswith("planner.")}


def objectives_dict(vals: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`objectives.<name>.<key>` values → `build_objectives` input."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in vals.items():
        if k.startswith("objectives."):
            _, name, key = k.split(".", 2)
            out.setdefault(name, {})[key] = v
    return out


def check_all(specs: Sequence[ParameterSpec], vals: Mapping[str, Any]) -> str | None:
    """Whole-set validation (enums, finiteness, PlannerConfig rules, bounds): a reason or None."""
    by_name = {s.name: s for s in specs}
    for name, v in vals.items():
        if name in by_name and v is not None:
            reason = check_value(by_name[name], v)
            if reason:
                return reason
    if any(k.startswith("planner.") for k in vals):
        try:
            PlannerConfig.from_dict(planner_dict(vals))
        except ValueError as e:
            return str(e)
    if any(k.startswith("objectives.") for k in vals):
        try:
            build_objectives(objectives_dict(vals))
        except ValueError as e:
            return str(e)
    lo, hi = vals.get("action_low"), vals.get("action_high")
    if lo is not None and hi is not None:
        if len(lo) != len(hi):
            return f"action_low has {len(lo)} values but action_high has {len(hi)}"
        if any(a >= b for a, b in zip(lo, hi)):
            return f"action_low {list(lo)} must be < action_high {list(hi)} elementwise"
    return None


def on_set_result(
    specs: Sequence[ParameterSpec], current: Mapping[str, Any], changed: Sequence[Parameter]
) -> SetParametersResult:
    """The on-set callback body: validate `current` updated with `changed` as a whole."""
    merged = dict(current)
    for p in changed:
        v = p.value
        if v is not None and not isinstance(v, (str, bool, int, float, list)):
            v = list(v)
        merged[p.name] = v
    reason = check_all(specs, merged)
    return SetParametersResult(successful=reason is None, reason=reason or "")
