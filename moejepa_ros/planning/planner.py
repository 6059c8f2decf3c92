"""`Planner`: the one planning interface the ROS node and the training loop use.

`make_planner(cfg, model, objectives, action_low, action_high)` -> `Planner`;
`plan(z0, goal_z=None)` -> `Plan`, warm-started from the previous plan shifted by one step;
`update_config(cfg)` for live tuning (cheap; keeps the warm start when shapes permit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .cem import cem_update
from .config import PlannerConfig
from .correction import OnlineCorrection
from .gradient import gradient_inits, gradient_optimize
from .mppi import mppi_update
from .objectives import Objectives, PoseGoal, build_objectives
from .problem import Plan, Problem
from .protocol import check_model, has_head
from .recovery import StallRecovery
from .sampling import Buffers, policy_prior, sampling_optimize

BoundsLike = Sequence[float] | Tensor | float


class Planner:
    """Latent MPC over a `LatentModel`; the method (cem | mppi | gradient | cem_gradient) by name."""

    def __init__(
        self,
        cfg: PlannerConfig,
        model: Any,
        objectives: Objectives,
        action_low: BoundsLike,
        action_high: BoundsLike,
        device: str | torch.device = "cpu",
    ):
        check_model(model)
        self.model = model
        self.device = torch.device(device)
        self.action_dim = int(model.action_dim)
        self.latent_dim = int(model.latent_dim)
        low = _bounds("action_low", action_low, self.action_dim, self.device)
        high = _bounds("action_high", action_high, self.action_dim, self.device)
        if not bool((high > low).all()):
            raise ValueError(
                f"action_high must exceed action_low in every dim: low={low.tolist()}, high={high.tolist()}"
            )
        self.action_low, self.action_high = low, high
        self._center = (high + low) / 2
        self._half = (high - low) / 2
        self.cfg = (
            PlannerConfig.from_dict(cfg.to_dict()) if isinstance(cfg, PlannerConfig) else PlannerConfig.from_dict(cfg)
        )
        self.update_objectives(objectives)
        self._buffers = Buffers()
        self._gen = torch.Generator(device=self.device)
        self._discounts: Tensor | None = None
        c = self.cfg
        self.correction = OnlineCorrection(
            c.correction_memory,
            c.correction_bandwidth,
            c.correction_action_bandwidth,
            c.correction_prior,
            self._center,
            self._half,
        )
        self.recovery = StallRecovery(
            c.stall_steps, c.stall_weight, c.stall_bandwidth, c.stall_progress, c.stall_min_distance
        )
        self.reset()

    # ---- state -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start, the previous action, the online correction and the recovery's visits;
        re-seed the generator."""
        self._warm: Tensor | None = None  # normalised [H, A]
        self._age = 0  # steps already executed of the warm start's first (held) action
        self._prev_action: Tensor | None = None
        self._prev_z: Tensor | None = None
        # the objective the last plan optimised: `last_problem.evaluate(u)` scores other sequences (diagnostics)
        self.last_problem: Problem | None = None
        self.correction.clear()
        self.recovery.clear()
        self._gen.manual_seed(self.cfg.seed)

    def update_config(self, cfg: PlannerConfig | Mapping[str, Any]) -> PlannerConfig:
        """Apply a new (validated) config; keeps the warm start, resized if the horizon changed."""
        new = cfg.replace() if isinstance(cfg, PlannerConfig) else self.cfg.replace(**dict(cfg))
        old = self.cfg
        self.cfg = new
        if new.seed != old.seed:
            self._gen.manual_seed(new.seed)
        self.correction.configure(
            new.correction_memory, new.correction_bandwidth, new.correction_action_bandwidth, new.correction_prior
        )
        self.recovery.configure(
            new.stall_steps, new.stall_weight, new.stall_bandwidth, new.stall_progress, new.stall_min_distance
        )
        if new.horizon != old.horizon or new.gamma != old.gamma or new.hold != old.hold:
            self._discounts = None
            if self._warm is not None:
                self._warm = _resize(self._warm, new.horizon)
        return new

    def update_objectives(self, objectives: Objectives | Mapping[str, Any]) -> None:
        """Swap the objectives (e.g. live weights); checks the model has the heads they need."""
        objs = objectives if isinstance(objectives, Objectives) else build_objectives(objectives)
        objs.check(self.model)
        self.objectives = objs

    @property
    def warm_start(self) -> Tensor | None:
        """The normalised [H, A] sequence the next plan starts from (None after reset)."""
        return self._warm

    # ---- planning ----------------------------------------------------------------------
    def plan(
        self,
        z0: Tensor,
        goal_z: Tensor | None = None,
        prev_action: Tensor | None = None,
        pose_goal: PoseGoal | None = None,
    ) -> Plan:
        """Optimise an action sequence from latent `z0[D]`; `prev_action` defaults to the last
        plan's first action (assumed executed), used by the smoothness objective and, with
        `correction_memory` > 0, to learn the model's error on the step just taken. `pose_goal` is the
        goal in the robot's frame, for the goal metric `pose`."""
        t0 = time.perf_counter()
        cfg = self.cfg
        z0 = self._latent("z0", z0)
        goal = None if goal_z is None else self._latent("goal_z", goal_z)
        if goal is None and self.objectives.needs_goal:
            raise ValueError("the 'goal' objective is enabled but plan() got no goal_z")
        if prev_action is not None:
            prev = torch.as_tensor(prev_action, dtype=torch.float32, device=self.device).reshape(-1)
            if prev.shape[0] != self.action_dim:
                raise ValueError(f"prev_action has {prev.shape[0]} dims, the model's action has {self.action_dim}")
        else:
            prev = self._prev_action
        if self._discounts is None:
            self._discounts = cfg.gamma ** torch.arange(cfg.horizon * cfg.hold, dtype=torch.float32, device=self.device)
        if cfg.correction_memory > 0 and self._prev_z is not None and prev is not None:
            self.correction.observe(self.model, self._prev_z, prev, z0)
        self._prev_z = z0.detach().clone()
        goal_d = self.goal_distance(z0, goal, pose_goal)
        problem = Problem(
            self.correction.wrap(self.model),
            self.objectives,
            self._center,
            self._half,
            z0,
            cfg.gamma,
            cfg.horizon,
            goal_z=goal,
            prev_action=prev,
            discounts=self._discounts,
            hold=cfg.hold,
            extra_cost=self.recovery.cost if self._stalled(z0, goal_d) else None,
            pose_goal=pose_goal,
        )
        self.last_problem = problem
        if cfg.warm_start and self._warm is not None:
            mean0 = self._warm
        else:
            mean0 = torch.zeros(cfg.horizon, self.action_dim, device=self.device)

        if cfg.method in ("cem", "mppi", "cem_gradient"):
            update = mppi_update if cfg.method == "mppi" else cem_update
            with torch.inference_mode():
                prior = None
                if cfg.policy_prior_samples > 0 and has_head(self.model, "actor"):
                    prior = policy_prior(
                        problem, cfg.policy_prior_samples, cfg.horizon, cfg.policy_prior_std, self._gen
                    )
                best_u, cost, stats, _, std = sampling_optimize(
                    problem, cfg, mean0, self._gen, update, self._buffers, prior
                )
            if cfg.method == "cem_gradient":
                inits = gradient_inits(best_u.clone(), std.clone(), cfg.grad_restarts, self._gen)
                g_u, g_cost, g_stats = gradient_optimize(problem, cfg, inits)
                stats = stats + [{"phase": "gradient", **s} for s in g_stats]
                if g_cost <= cost:
                    best_u, cost = g_u, g_cost
        else:  # gradient
            inits = gradient_inits(mean0, cfg.init_std, cfg.grad_restarts, self._gen)
            best_u, cost, stats = gradient_optimize(problem, cfg, inits)

        best_u = best_u.detach().clone()
        with torch.no_grad():
            actions = problem.held(problem.to_actions(best_u))
        # a held action stays the warm start's first one until it has been executed `hold` times
        self._age += 1
        if self._age >= cfg.hold:
            self._warm, self._age = _shift(best_u), 0
        else:
            self._warm = best_u.clone()
        first = actions[0].clone()
        self._prev_action = first
        elapsed = (time.perf_counter() - t0) * 1e3
        return Plan(
            actions=actions,
            first_action=first,
            predicted_cost=cost,
            stats=stats,
            elapsed_ms=elapsed,
            method=cfg.method,
            rollout_steps=problem.rollout_steps,
            goal_distance=goal_d,
        )

    @property
    def recovering(self) -> bool:
        """Whether the last plan paid the stall recovery's revisit cost (see recovery.py)."""
        return self.recovery.active

    def goal_distance(self, z0: Tensor, goal: Tensor | None, pose_goal: PoseGoal | None = None) -> float:
        """d(z0, goal) by the goal objective's metric (`pose`: from `pose_goal`); NaN without a goal or an
        enabled goal objective."""
        if goal is None or not self.objectives.needs_goal:
            return math.nan
        with torch.no_grad():
            return float(self.objectives["goal"].start_distance(z0, goal, self.model, pose_goal))

    def _stalled(self, z0: Tensor, distance: float) -> bool:
        """Feed the recovery this replan's start latent and goal distance."""
        if self.cfg.stall_steps == 0 or math.isnan(distance):
            self.recovery.active = False
            return False
        return self.recovery.update(z0, distance)

    def _latent(self, name: str, z: Tensor) -> Tensor:
        z = torch.as_tensor(z, device=self.device)
        if z.dtype != torch.float32:
            z = z.float()
        if z.ndim == 2 and z.shape[0] == 1:
            z = z[0]
        if z.ndim != 1 or z.shape[0] != self.latent_dim:
            raise ValueError(f"{name} must be [{self.latent_dim}] (the model's latent_dim), got {tuple(z.shape)}")
        return z


def make_planner(
    cfg: PlannerConfig | Mapping[str, Any] | None,
    model: Any,
    objectives: Objectives | Mapping[str, Any] | None,
    action_low: BoundsLike,
    action_high: BoundsLike,
    device: str | torch.device = "cpu",
) -> Planner:
    """The planner for `cfg.method`, scoring with `objectives` (an `Objectives` or its dict)."""
    cfg = PlannerConfig() if cfg is None else cfg
    objs = objectives if isinstance(objectives, Objectives) else build_objectives(objectives)
    return Planner(cfg, model, objs, action_low, action_high, device=device)


def _bounds(name: str, v: BoundsLike, dim: int, device: torch.device) -> Tensor:
    t = torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(dim).clone()
    if t.shape[0] != dim:
        raise ValueError(f"{name} has {t.shape[0]} values, the model's action_dim is {dim}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t


def _shift(u: Tensor) -> Tensor:
    """Drop the executed step and repeat the last one: the next plan's starting mean."""
    return torch.cat([u[1:], u[-1:]], 0) if u.shape[0] > 1 else u.clone()


def _resize(u: Tensor, horizon: int) -> Tensor:
    if horizon <= u.shape[0]:
        return u[:horizon].clone()
    return torch.cat([u, u[-1:].expand(horizon - u.shape[0], -1)], 0)
