"""`PlannerPolicy`: the control step as a gymnasium-side policy `(obs, info) -> action` (Mode-2 MPC).

A thin episode adapter over `LatentController` (the step planner_node runs: encode once, plan with
warm start, clamp, non-finite → zero command) and `FrameStack` (the node's stack: an episode starts
from its first frame repeated k times). With a goal objective, `info["goal_image"]` at the episode
start is the goal. MBRL collection adds Gaussian exploration noise (its own rng) to the action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from moejepa_ros.planning import DEFAULT_OBJECTIVES, Plan

from .controller import OK, Decision, LatentController
from .frame_stack import FrameStack
from .preprocess import preprocess


class PlannerPolicy:
    """`policy(obs, info)` per env step; a new episode starts at `info["step"] == 0` or after `reset()`."""

    def __init__(
        self,
        model,
        planner_cfg: Mapping[str, Any],
        objectives: Mapping[str, Any] | None,
        action_low: Sequence[float],
        action_high: Sequence[float],
        device: str | torch.device = "cpu",
        explore_std: float = 0.0,
        seed: int = 0,
    ):
        if explore_std < 0:
            raise ValueError(f"PlannerPolicy: explore_std={explore_std} must be >= 0")
        self.controller = LatentController(
            model.eval(), device, planner_cfg, objectives or DEFAULT_OBJECTIVES, action_low, action_high
        )
        self.frames = FrameStack(self.controller.frame_stack, self.controller.image_size)
        self.explore_std = float(explore_std)
        self.rng = np.random.default_rng(seed)
        self.last_decision: Decision | None = None

    @property
    def last_plan(self) -> Plan | None:
        """The planner's result of the last step (None when the step did not plan)."""
        return self.controller.last_plan

    def reset(self) -> None:
        """Forget the frames, the goal, the warm start and the commands sent: the next call starts an episode."""
        self.frames.clear()
        self.controller.set_goal(None)
        self.controller.at_rest()

    def _start(self, info: Mapping[str, Any]) -> None:
        self.reset()
        if self.controller.needs_goal:
            g = info.get("goal_image")
            if g is None:
                raise ValueError(
                    "PlannerPolicy: the goal objective is enabled but the env gives no "
                    "info['goal_image'] (use a goal-mode env)"
                )
            self.controller.set_goal(preprocess(np.asarray(g), self.controller.image_size))

    def __call__(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        if int(info.get("step", -1)) == 0 or not len(self.frames):
            self._start(info)
        self.frames.push(np.asarray(obs))
        d = self.last_decision = self.controller.act(self.frames.snapshot().frames)
        a = d.action
        if d.level == OK and self.explore_std > 0:
            c = self.controller
            a = np.clip(
                a + self.rng.normal(0.0, self.explore_std, a.shape).astype(np.float32) * (c.high - c.low) / 2,
                c.low,
                c.high,
            )
        return a

    act = __call__
