"""`Objectives`: the weighted sum of the enabled objectives (what a planner minimises)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from .rollout import Rollout

if TYPE_CHECKING:
    from .base import Objective


class Objectives:
    """The weighted sum of enabled objectives; `evaluate` also returns each (unweighted) term."""

    def __init__(self, items: list[Objective]):
        names = [o.name for o in items]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives: duplicate names in {names}")
        self.items = list(items)

    @property
    def enabled(self) -> list[Objective]:
        return [o for o in self.items if o.enabled]

    def __getitem__(self, name: str) -> Objective:
        for o in self.items:
            if o.name == name:
                return o
        raise KeyError(f"no objective {name!r}; have {[o.name for o in self.items]}")

    def check(self, model: Any) -> None:
        """Raise when nothing is enabled or the model lacks a head an enabled objective needs."""
        if not self.enabled:
            raise ValueError(f"objectives: none enabled (have {[o.name for o in self.items]})")
        for o in self.enabled:
            o.check(model)

    @property
    def needs_goal(self) -> bool:
        """Whether an enabled objective scores against the goal latent (plan() then needs goal_z)."""
        return any(o.needs_goal for o in self.enabled)

    @property
    def needs_latents(self) -> bool:
        """Whether an enabled objective reads the imagined latents (else `Rollout.latents` may be None)."""
        return any(o.needs_latents() for o in self.enabled)

    def evaluate(self, r: Rollout) -> tuple[Tensor, dict[str, Tensor]]:
        total = None
        terms = {}
        for o in self.enabled:
            c = o(r)
            terms[o.name] = c
            total = o.weight * c if total is None else total + o.weight * c
        if total is None:
            raise ValueError("objectives: none enabled")
        return total, terms

    def __call__(self, r: Rollout) -> Tensor:
        return self.evaluate(r)[0]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {o.name: o.to_dict() for o in self.items}
