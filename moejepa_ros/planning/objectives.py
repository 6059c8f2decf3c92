"""Named, composable planning objectives (nav2 MPPI critics are the model).

Each objective maps a batch of imagined rollouts to a **cost per sample** `[N]` (lower is
better); `Objectives` returns the weighted sum of the enabled ones. They are built from the
same nested dict the ROS parameters / YAML use:
`{"reward": {"enabled": true, "weight": 1.0, "terminal_value": false}, "goal": {...}, ...}`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch
from torch import Tensor

from .protocol import has_head


@dataclass
class Rollout:
    """One batch of imagined trajectories, what every objective sees.

    `latents[N, H, D]` are z_1..z_H after `actions[N, H, A]` (real units) from `z0[D]`;
    `discounts[H]` = gamma^t (t = 0..H-1); `prev_action[A]` is the last executed action (or None).
    """

    model: Any
    z0: Tensor
    latents: Tensor
    actions: Tensor
    discounts: Tensor
    gamma: float = 1.0
    goal_z: Optional[Tensor] = None
    prev_action: Optional[Tensor] = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def states_before(self) -> Tensor:
        """z_0..z_{H-1}: the latent each action is taken in (reward(z_t, a_t))."""
        if "before" not in self._cache:
            n = self.latents.shape[0]
            first = self.z0.reshape(1, 1, -1).expand(n, 1, -1)
            self._cache["before"] = torch.cat([first, self.latents[:, :-1]], 1)
        return self._cache["before"]


class Objective:
    """Base: `enabled`, `weight`, and `__call__(rollout) -> cost[N]` (unweighted)."""

    name = "objective"
    needs: tuple[str, ...] = ()  # optional model heads this objective calls
    params: tuple[str, ...] = ()  # objective-specific parameter names

    def __init__(self, enabled: bool = True, weight: float = 1.0):
        if not isinstance(enabled, bool):
            raise ValueError(f"objective {self.name!r}: enabled={enabled!r} must be a bool")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not torch.isfinite(torch.tensor(float(weight))):
            raise ValueError(f"objective {self.name!r}: weight={weight!r} must be a finite number")
        self.enabled = enabled
        self.weight = float(weight)

    def check(self, model: Any) -> None:
        """Raise when the model lacks a head this objective needs."""
        for head in self.needs_heads():
            if not has_head(model, head):
                raise ValueError(
                    f"objective {self.name!r} needs model.{head}(), which {type(model).__name__} does not provide"
                )

    def needs_heads(self) -> tuple[str, ...]:
        return self.needs

    def __call__(self, r: Rollout) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "weight": self.weight, **{p: getattr(self, p) for p in self.params}}


class RewardObjective(Objective):
    """-(sum_t gamma^t r(z_t, a_t) [+ gamma^H V(z_H)]): maximise predicted discounted return."""

    name = "reward"
    needs = ("reward",)
    params = ("terminal_value",)

    def __init__(self, enabled: bool = True, weight: float = 1.0, terminal_value: bool = False):
        super().__init__(enabled, weight)
        if not isinstance(terminal_value, bool):
            raise ValueError(f"objective 'reward': terminal_value={terminal_value!r} must be a bool")
        self.terminal_value = terminal_value

    def needs_heads(self) -> tuple[str, ...]:
        return ("reward", "value") if self.terminal_value else ("reward",)

    def __call__(self, r: Rollout) -> Tensor:
        rew = r.model.reward(r.states_before, r.actions)  # [N, H]
        ret = rew @ r.discounts
        if self.terminal_value:
            ret = ret + (r.discounts[-1] * r.gamma) * r.model.value(r.latents[:, -1])
        return -ret


GOAL_METRICS = ("l2", "sq_l2", "l1", "cosine", "learned")


class GoalObjective(Objective):
    """Distance of predicted latents to the goal latent (e.g. a goal image's embedding).

    metric: `l2` (Euclidean), `sq_l2` (squared), `l1`, `cosine` (1 - cos), or `learned`: the
    model's goal-distance head (steps to go, aware of walls; `moejepa-train goal` trains it);
    `every_step`: discounted sum over z_1..z_H instead of the last latent only.
    """

    name = "goal"
    params = ("metric", "every_step")

    def __init__(self, enabled: bool = True, weight: float = 1.0, metric: str = "l2", every_step: bool = False):
        super().__init__(enabled, weight)
        if metric not in GOAL_METRICS:
            raise ValueError(f"objective 'goal': metric={metric!r} must be one of {list(GOAL_METRICS)}")
        if not isinstance(every_step, bool):
            raise ValueError(f"objective 'goal': every_step={every_step!r} must be a bool")
        self.metric = metric
        self.every_step = every_step

    def needs_heads(self) -> tuple[str, ...]:
        return ("goal_distance",) if self.metric == "learned" else ()

    def check(self, model: Any) -> None:
        try:
            super().check(model)
        except ValueError as e:
            raise ValueError(f"{e} (metric=learned: train the head with `moejepa-train goal`, "
                             "or plan with metric=l2)") from None

    def distance(self, z: Tensor, g: Tensor, model: Any = None) -> Tensor:
        if self.metric == "learned":
            return model.goal_distance(z, g)
        if self.metric == "cosine":
            return 1.0 - torch.nn.functional.cosine_similarity(z, g.expand_as(z), dim=-1)
        d = z - g
        if self.metric == "l1":
            return d.abs().sum(-1)
        sq = d.pow(2).sum(-1)
        return sq if self.metric == "sq_l2" else sq.clamp_min(1e-12).sqrt()

    def __call__(self, r: Rollout) -> Tensor:
        if r.goal_z is None:
            raise ValueError("objective 'goal' is enabled but plan() got no goal_z")
        g = r.goal_z.reshape(-1)
        if g.shape[0] != r.latents.shape[-1]:
            raise ValueError(f"goal_z has {g.shape[0]} dims, the model's latent has {r.latents.shape[-1]}")
        if self.every_step:
            return self.distance(r.latents, g, r.model) @ r.discounts
        return self.distance(r.latents[:, -1], g, r.model)


class CostObjective(Objective):
    """Learned energy C(z) of the predicted latents (keeps plans near familiar states)."""

    name = "cost"
    needs = ("cost",)
    params = ("every_step",)

    def __init__(self, enabled: bool = True, weight: float = 1.0, every_step: bool = True):
        super().__init__(enabled, weight)
        if not isinstance(every_step, bool):
            raise ValueError(f"objective 'cost': every_step={every_step!r} must be a bool")
        self.every_step = every_step

    def __call__(self, r: Rollout) -> Tensor:
        if self.every_step:
            return r.model.cost(r.latents) @ r.discounts
        return r.model.cost(r.latents[:, -1])


class MagnitudeObjective(Objective):
    """sum_t ||a_t||^2 in command units: prefer small efforts."""

    name = "magnitude"

    def __call__(self, r: Rollout) -> Tensor:
        return r.actions.pow(2).sum((1, 2))


class SmoothnessObjective(Objective):
    """sum_t ||a_t - a_{t-1}||^2, a_{-1} = the previously executed action when known."""

    name = "smoothness"

    def __call__(self, r: Rollout) -> Tensor:
        a = r.actions
        c = (a[:, 1:] - a[:, :-1]).pow(2).sum((1, 2))
        if r.prev_action is not None:
            c = c + (a[:, 0] - r.prev_action.reshape(1, -1)).pow(2).sum(-1)
        return c


REGISTRY: dict[str, Callable[..., Objective]] = {
    cls.name: cls
    for cls in (RewardObjective, GoalObjective, CostObjective, MagnitudeObjective, SmoothnessObjective)
}

DEFAULT_OBJECTIVES: dict[str, dict[str, Any]] = {
    "reward": {"enabled": True, "weight": 1.0, "terminal_value": False},
    "goal": {"enabled": False, "weight": 1.0, "metric": "l2", "every_step": False},
    "cost": {"enabled": False, "weight": 0.1, "every_step": True},
    "magnitude": {"enabled": False, "weight": 0.01},
    "smoothness": {"enabled": False, "weight": 0.01},
}


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
        return any(o.name == "goal" for o in self.enabled)

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


def build_objectives(spec: Mapping[str, Any] | None = None) -> Objectives:
    """Objectives from `{name: {enabled, weight, ...params}}`; None -> `DEFAULT_OBJECTIVES`.

    Unknown objective names or parameters raise ValueError listing the known ones.
    """
    spec = DEFAULT_OBJECTIVES if spec is None else spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"objectives must be a mapping name -> settings, got {type(spec).__name__}")
    items = []
    for name, params in spec.items():
        if name not in REGISTRY:
            raise ValueError(f"unknown objective {name!r}; known objectives: {sorted(REGISTRY)}")
        params = {} if params is None else params
        if not isinstance(params, Mapping):
            raise ValueError(f"objective {name!r}: settings must be a mapping, got {type(params).__name__}")
        cls = REGISTRY[name]
        allowed = ("enabled", "weight") + cls.params
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"objective {name!r}: unknown parameter(s) {unknown}; known: {list(allowed)}")
        items.append(cls(**params))
    return Objectives(items)
