"""`PlannerConfig`: plain, validated settings of a latent-space planner (the ROS params' shape).

Std values are in *normalised* action units: every planner searches u in [-1, 1]^A, mapped
affinely onto [action_low, action_high], so one config works for any command bounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

METHODS = ("cem", "mppi", "gradient", "cem_gradient")
EXECUTE = ("best", "mean", "elite")
GRAD_OPTIMIZERS = ("adam", "sgd")
_INT_MAX = 2**31 - 1


def _f(
    default: Any, help: str, low: float | None = None, high: float | None = None, choices: tuple[str, ...] = ()
) -> Any:
    """A field with its one help text and the range / choices its ROS parameter declares."""
    return dataclasses.field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices})


@dataclass
class PlannerConfig:
    """Settings shared by all planners; `method` picks the optimiser by name.

    Defaults are the control-rate configuration (256 samples x horizon 5 x 4 iterations),
    sized to plan within ~30 ms on 2 CPU cores with the default world model.
    """

    method: str = _f("cem", "cem | mppi | gradient | cem_gradient", choices=METHODS)
    samples: int = _f(256, "action sequences evaluated per iteration", 1, 65536)
    horizon: int = _f(5, "planning horizon H (steps)", 1, 256)
    hold: int = _f(1, "each planned action is held this many steps: piecewise-constant plans reach H*hold steps ahead")
    iterations: int = _f(4, "CEM / MPPI refinement iterations", 1, 100)
    elites: int = _f(32, "CEM: best samples refitting the Gaussian", 1, 65536)
    temperature: float = _f(
        0.5, "MPPI, CEM's weighted elites and the elite draw: softmax temperature on (cost - min cost)", 1e-6, 1e6
    )
    weighted_elites: bool = _f(
        False, "CEM: elites weighted by exp(-(cost - min cost) / temperature) (TD-MPC), else equally"
    )
    execute: str = _f(
        "best",
        "the plan executed and warm-started: best (lowest-cost sample seen) | mean (the refitted mean) | "
        "elite (one last-iteration elite drawn by exp(-(cost - min cost) / temperature), TD-MPC)",
        choices=EXECUTE,
    )
    momentum: float = _f(0.1, "new_mean = momentum * old + (1 - momentum) * fitted", 0.0, 0.999)
    init_std: float = _f(1.0, "starting std of the sampling Gaussian (normalised units)", 1e-6, 10.0)
    min_std: float = _f(0.05, "std floor (keeps exploring)", 1e-6, 10.0)
    max_std: float = _f(2.0, "std ceiling", 1e-6, 10.0)
    gamma: float = _f(0.99, "discount of per-step objective terms", 1e-6, 1.0)
    seed: int = _f(0, "the planner's own torch.Generator seed", 0, _INT_MAX)
    warm_start: bool = _f(True, "start from the previous plan shifted by one step")
    keep_mean: bool = _f(True, "evaluate the current mean as one of the samples")
    population_decay: float = _f(1.0, "samples at iteration i = samples * decay^i (iCEM; >= elites)", 1e-3, 1.0)
    keep_elites: int = _f(8, "best samples carried into the next iteration (iCEM), not re-rolled", 0, 65536)
    policy_prior_samples: int = _f(0, "samples drawn by rolling out model.actor (Mode-1 seeds Mode-2)", 0, 65536)
    policy_prior_std: float = _f(0.1, "noise added to the actor's actions (normalised units)", 0.0, 10.0)
    grad_steps: int = _f(10, "gradient planner: optimiser steps", 0, 1000)
    grad_lr: float = _f(0.1, "gradient planner: learning rate (normalised units)", 1e-9, 100.0)
    grad_restarts: int = _f(2, "gradient planner: parallel starts (first = warm start / CEM plan)", 1, 256)
    grad_optimizer: str = _f("adam", "adam | sgd (projected gradient descent)", choices=GRAD_OPTIMIZERS)
    correction_memory: int = _f(
        0,
        "online model correction: the last N executed transitions correct the model's "
        "rollouts where it was wrong (0 = off)",
        0,
        4096,
    )
    correction_bandwidth: float = _f(
        1.0, "online correction: latent kernel width, in median predicted steps", 1e-3, 100.0
    )
    correction_action_bandwidth: float = _f(
        0.25, "online correction: action kernel width (normalised units)", 1e-3, 10.0
    )
    correction_prior: float = _f(
        0.1, "online correction: pull towards no correction away from the stored transitions", 1e-6, 100.0
    )
    stall_steps: int = _f(
        0,
        "recovery: after this many replans without progress on the goal distance, plans pay "
        "for revisiting latents the robot has been at (0 = off)",
        0,
        10000,
    )
    stall_weight: float = _f(1.0, "recovery: weight of the revisit cost", 0.0, 1e6)
    stall_bandwidth: float = _f(2.0, "recovery: revisit kernel width, in median imagined steps", 1e-3, 100.0)
    stall_progress: float = _f(
        1.0, "recovery: a drop of the goal distance at least this large counts as progress", 1e-6, 1e6
    )
    stall_min_distance: float = _f(
        2.0, "recovery: off within this goal distance (at the goal, staying put is right)", 0.0, 1e6
    )

    # ---- dict round trip -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PlannerConfig:
        """Build from a (possibly partial) dict; unknown keys raise naming the known ones."""
        d = dict(d or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"PlannerConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        kw = {}
        for k, v in d.items():
            kw[k] = _coerce(k, known[k].type, v)
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def replace(self, **changes: Any) -> PlannerConfig:
        """A validated copy with `changes` applied."""
        return PlannerConfig.from_dict({**self.to_dict(), **changes})

    # ---- validation ------------------------------------------------------------------
    def validate(self) -> PlannerConfig:
        """Raise ValueError naming the first bad field, its value and the rule it breaks."""

        def bad(name: str, why: str) -> None:
            raise ValueError(f"PlannerConfig.{name}={getattr(self, name)!r} is invalid: {why}")

        if self.method not in METHODS:
            bad("method", f"must be one of {list(METHODS)}")
        for name in ("samples", "horizon", "hold", "iterations", "elites", "grad_restarts"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "must be an integer >= 1")
        for name in ("policy_prior_samples", "keep_elites", "grad_steps", "seed", "correction_memory", "stall_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(name, "must be an integer >= 0")
        if self.elites > self.samples:
            bad("elites", f"must be <= samples ({self.samples})")
        if self.policy_prior_samples + int(self.keep_mean) >= self.samples:
            bad(
                "policy_prior_samples",
                f"plus the kept mean must leave room for sampling within samples ({self.samples})",
            )
        if self.keep_elites + self.policy_prior_samples + int(self.keep_mean) >= self.samples:
            bad("keep_elites", f"plus policy_prior_samples and the kept mean must be < samples ({self.samples})")
        for name in (
            "temperature",
            "init_std",
            "min_std",
            "max_std",
            "grad_lr",
            "correction_bandwidth",
            "correction_action_bandwidth",
            "correction_prior",
            "stall_bandwidth",
            "stall_progress",
        ):
            v = getattr(self, name)
            if not _finite(v) or v <= 0:
                bad(name, "must be a finite number > 0")
        for name in ("stall_weight", "stall_min_distance"):
            if not _finite(getattr(self, name)) or getattr(self, name) < 0:
                bad(name, "must be a finite number >= 0")
        if not _finite(self.policy_prior_std) or self.policy_prior_std < 0:
            bad("policy_prior_std", "must be a finite number >= 0")
        if self.min_std > self.max_std:
            bad("min_std", f"must be <= max_std ({self.max_std})")
        if not _finite(self.population_decay) or not 0.0 < self.population_decay <= 1.0:
            bad("population_decay", "must be in (0, 1]")
        if not _finite(self.momentum) or not 0.0 <= self.momentum < 1.0:
            bad("momentum", "must be in [0, 1)")
        if not _finite(self.gamma) or not 0.0 < self.gamma <= 1.0:
            bad("gamma", "must be in (0, 1]")
        if self.execute not in EXECUTE:
            bad("execute", f"must be one of {list(EXECUTE)}")
        if self.grad_optimizer not in GRAD_OPTIMIZERS:
            bad("grad_optimizer", f"must be one of {list(GRAD_OPTIMIZERS)}")
        if self.method in ("gradient", "cem_gradient") and self.grad_steps < 1:
            bad("grad_steps", f"must be >= 1 for method {self.method!r}")
        return self


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _coerce(name: str, typ: Any, v: Any) -> Any:
    """Accept what YAML / ROS params give (ints for floats); reject wrong kinds by name."""
    t = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    if t == "float" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if t == "bool" and not isinstance(v, bool):
        raise ValueError(f"PlannerConfig.{name}={v!r} is invalid: must be a bool")
    if t == "int" and isinstance(v, float) and v.is_integer():
        return int(v)
    if t == "str" and not isinstance(v, str):
        raise ValueError(f"PlannerConfig.{name}={v!r} is invalid: must be a string")
    return v


# One-line help per field, read from the fields (e.g. for ROS ParameterDescriptor.description).
FIELD_HELP: dict[str, str] = {f.name: f.metadata["help"] for f in fields(PlannerConfig)}
