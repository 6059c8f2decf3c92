"""`Objective` and `Option`: an objective declares its parameters once, on its class.

A concrete objective sets `name`, `enabled_default`, `weight_default` and `options` (its own
`Option`s: default, help, range or choices); defining the class registers it by `name`. The ROS
parameters `objectives.<name>.<key>`, their descriptors and the README table are generated from
`declared()`, and `__init__` validates against it, so a default or help text lives in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from ..protocol import has_head
from .registry import register
from .rollout import Rollout

_TYPE_WORDS = {bool: "a bool", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class Option:
    """One declared objective parameter; its type is the default's (bool, int, float or str)."""

    default: bool | int | float | str
    help: str
    low: float | None = None  # inclusive range, for int / float options
    high: float | None = None
    choices: tuple[str, ...] = ()  # allowed values, for str options

    def check(self, owner: str, key: str, value: Any) -> Any:
        """`value` as this option's type (ints accepted for floats), or ValueError naming it."""
        want = type(self.default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        why = None
        if type(value) is not want:
            why = f"must be {_TYPE_WORDS[want]}"
        elif want is float and not math.isfinite(value):
            why = "must be finite"
        elif self.choices and value not in self.choices:
            why = f"must be one of {list(self.choices)}"
        elif (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            why = f"must be in [{self.low:g}, {self.high:g}]"
        if why:
            raise ValueError(f"objective {owner!r}: {key}={value!r} is invalid: {why}")
        return value


class Objective:
    """Base: `enabled`, `weight`, the declared options as attributes, and `__call__(rollout) -> cost[N]`
    (unweighted, lower is better)."""

    name: ClassVar[str] = ""  # set by each concrete objective (a ROS parameter name segment)
    needs: ClassVar[tuple[str, ...]] = ()  # optional model heads this objective calls
    needs_goal: ClassVar[bool] = False  # scores against the goal latent (plan() then needs goal_z)
    enabled_default: ClassVar[bool] = False  # on when the node / `build_objectives(None)` has no say
    weight_default: ClassVar[float] = 1.0
    options: ClassVar[dict[str, Option]] = {}  # the objective's own parameters
    enabled: bool  # set from the declared options by __init__
    weight: float

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            register(cls)

    @classmethod
    def declared(cls) -> dict[str, Option]:
        """Every parameter of this objective, `enabled` and `weight` first."""
        summary = cls.__doc__.strip().splitlines()[0].rstrip(".") if cls.__doc__ else cls.name
        return {
            "enabled": Option(cls.enabled_default, f"use the {cls.name} objective: {summary}"),
            "weight": Option(cls.weight_default, f"weight of the {cls.name} objective", low=0.0, high=1e6),
            **cls.options,
        }

    def __init__(self, **values: Any):
        declared = self.declared()
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise ValueError(f"objective {self.name!r}: unknown parameter(s) {unknown}; known: {list(declared)}")
        for key, opt in declared.items():
            setattr(self, key, opt.check(self.name, key, values.get(key, opt.default)))

    def check(self, model: Any) -> None:
        """Raise when the model lacks a head this objective needs."""
        for head in self.needs_heads():
            if not has_head(model, head):
                raise ValueError(
                    f"objective {self.name!r} needs model.{head}(), which {type(model).__name__} does not provide"
                )

    def needs_heads(self) -> tuple[str, ...]:
        return self.needs

    def needs_latents(self) -> bool:
        """Whether it reads the imagined latents (when no enabled objective does, the planner skips the
        latent rollout: e.g. the goal metric `pose` with action-only terms)."""
        return True

    def __call__(self, r: Rollout) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.declared()}
