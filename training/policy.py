"""The world model + planner as a gymnasium-side policy `(obs, info) -> action` (Mode-2 MPC).

Keeps the last k frames (the first frame repeated at an episode start, as the node does),
encodes once per step, plans, and returns the first action (zeros if the plan is not finite).
With a goal objective, `info["goal_image"]` (repeated k times) is encoded as the goal latent.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Optional, Sequence

import numpy as np
import torch

from moejepa_ros.planning import build_objectives, make_planner


class PlannerPolicy:
    def __init__(self, model, planner_cfg: dict, objectives: dict, action_low: Sequence[float],
                 action_high: Sequence[float], device: str | torch.device = "cpu",
                 explore_std: float = 0.0, seed: int = 0):
        self.model = model.eval()
        self.device = torch.device(device)
        self.objectives = build_objectives(objectives or None)
        self.planner = make_planner(dict(planner_cfg), model, self.objectives, action_low, action_high,
                                    device=self.device)
        self.low = np.asarray(action_low, np.float32)
        self.high = np.asarray(action_high, np.float32)
        self.k = int(model.cfg.frame_stack)
        self.explore_std = float(explore_std)
        self.rng = np.random.default_rng(seed)
        self.frames: deque = deque(maxlen=self.k)
        self.goal_z: Optional[torch.Tensor] = None
        self.last_plan = None

    def reset(self) -> None:
        self.frames.clear()
        self.goal_z = None
        self.planner.reset()

    @torch.no_grad()
    def encode_stack(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(list(frames))).to(self.device)
        return self.model.encode(x[None])[0]

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if int(info.get("step", -1)) == 0 or not self.frames:
            self.reset()
            for _ in range(self.k):
                self.frames.append(obs)
            if self.objectives.needs_goal:
                g = info.get("goal_image")
                if g is None:
                    raise ValueError("PlannerPolicy: the goal objective is enabled but the env gives no "
                                     "info['goal_image'] (use a goal-mode env)")
                self.goal_z = self.encode_stack([g] * self.k)
        else:
            self.frames.append(obs)
        z = self.encode_stack(self.frames)
        plan = self.planner.plan(z, self.goal_z)
        self.last_plan = plan
        if not plan.ok:
            return np.zeros_like(self.low)
        a = plan.first_action.detach().cpu().numpy().astype(np.float32)
        if self.explore_std > 0:
            a = a + self.rng.normal(0.0, self.explore_std, size=a.shape).astype(np.float32) * (self.high - self.low) / 2
        return np.clip(a, self.low, self.high)

    act = __call__
