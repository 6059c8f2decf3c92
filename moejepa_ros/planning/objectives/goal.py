"""Goal: distance of the predicted latents to the goal latent (e.g. a goal image's embedding), of the
predicted pose to the goal's pose (metric `pose`), or of an arm's joint angles read from both (`joints`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from moejepa_ros.model.joint_probe import angle_error
from moejepa_ros.model.relative_pose import relative_pose

from .base import Objective, Option
from .rollout import PoseGoal, Rollout

GOAL_METRICS = ("l2", "sq_l2", "l1", "cosine", "learned", "pose", "joints")


class GoalObjective(Objective):
    """Distance of predicted latents to the goal latent (e.g. a goal image's embedding).

    `learned` uses the model's goal-distance head (steps to go, aware of walls; `moejepa-train goal`
    trains it); `every_step` sums over z_1..z_H instead of scoring the last latent only.

    `pose` plans in the robot's plane instead (`moejepa-train pose` trains the parts): the rollout's
    `pose_goal` holds where the goal image was taken in the current robot frame (the pair pose net,
    once per replan) and the last executed commands; the model's motion model predicts where each
    candidate's commands (one per control step, holds expanded) end, and the cost is
    |xy of goal ⊖ predicted| / xy_scale + |dψ| / yaw_scale. The scales' defaults are the mobile base's
    success tolerances (0.1 m, 0.25 rad; BENCHMARKS.md section 8), so 1 + 1 is at the edge of success.

    `joints` reads an arm's joint angles from the latents with the model's joint-angle probe
    (`moejepa-train joints`): the cost is sum over joints of (wrapped angle error / joint_scale)^2
    between the predicted latents' angles and the goal latent's.
    """

    name = "goal"
    needs_goal = True
    enabled_default = False
    weight_default = 1.0
    options = {
        "metric": Option(
            "l2",
            "goal distance: latent l2 | sq_l2 | l1 | cosine, or learned (the checkpoint's "
            "goal-distance head from `moejepa-train goal`, aware of walls), or pose (the goal's pose from the "
            "goal image against the pose the commands reach, the parts from `moejepa-train pose`), or joints "
            "(an arm's joint angles read from the latents, the probe from `moejepa-train joints`)",
            choices=GOAL_METRICS,
        ),
        "every_step": Option(False, "sum the goal distance over every imagined step (else the last one only)"),
        "xy_scale": Option(
            0.1, "metric=pose: metres of position error that cost 1 (the mobile base's success tolerance)", 1e-4, 1e3
        ),
        "yaw_scale": Option(
            0.25, "metric=pose: radians of heading error that cost 1 (the mobile base's success tolerance)", 1e-4, 1e3
        ),
        "pose_gain": Option(
            0.3,
            "metric=pose: weight of each replan's new goal placement against the last one carried through the "
            "motion model (1 = the new one alone)",
            0.01,
            1.0,
        ),
        "pose_gate": Option(
            0.0,
            "metric=pose: metres (and this / the parts' yaw_scale radians) a new placement may move the tracked "
            "goal before the blend, larger differences clipped (a misread view moves it by at most pose_gain x this; "
            "0 = no clip)",
            0.0,
            10.0,
        ),
        "route_lookahead": Option(
            0.35,
            "metric=pose with the place net's free-space map: while the goal is out of plain sight on the map, "
            "plan to a waypoint up to this many metres ahead on the way round (0 = always straight at the goal)",
            0.0,
            10.0,
        ),
        "joint_scale": Option(
            0.05,
            "metric=joints: radians of joint-angle error that cost 1 (the reacher's success tolerance)",
            1e-4,
            10.0,
        ),
    }

    def needs_heads(self) -> tuple[str, ...]:
        return {"learned": ("goal_distance",), "pose": ("relative_pose",), "joints": ("joint_angles",)}.get(
            self.metric, ()
        )

    def needs_latents(self) -> bool:
        return self.metric != "pose"

    def check(self, model: Any) -> None:
        try:
            super().check(model)
        except ValueError as e:
            how = {
                "learned": "metric=learned: train the head with `moejepa-train goal`, or plan with metric=l2",
                "pose": "metric=pose: train the parts with `moejepa-train pose` on bags with odometry; "
                "the onnxruntime backend does not run them: plan with backend torch",
                "joints": "metric=joints: train the probe with `moejepa-train joints` on bags with /joint_states",
            }[self.metric]
            raise ValueError(f"{e} ({how})") from None

    def pose_cost(self, pose: Tensor, goal: Tensor) -> Tensor:
        """Cost of ending at `pose` [..., 3] when the goal is at `goal` [3] (both in the current robot frame)."""
        d = relative_pose(pose, goal.expand_as(pose))
        return d[..., :2].norm(dim=-1) / self.xy_scale + d[..., 2].abs() / self.yaw_scale

    def start_distance(self, z0: Tensor, g: Tensor, model: Any, pose_goal: PoseGoal | None) -> Tensor:
        """The distance from where the robot is now: d(z0, g), or for `pose` the cost of standing still."""
        if self.metric == "pose":
            goal = self._pose_goal(pose_goal).pose
            return self.pose_cost(torch.zeros_like(goal), goal)
        return self.distance(z0[None], g[None], model)[0]

    def _pose_goal(self, pose_goal: PoseGoal | None) -> PoseGoal:
        if pose_goal is None:
            raise ValueError(
                "goal metric 'pose' needs the goal's pose (plan(..., pose_goal=...)); the controller computes "
                "it from a goal image (set_goal), not from a goal latent"
            )
        return pose_goal

    def distance(self, z: Tensor, g: Tensor, model: Any = None) -> Tensor:
        """d(z, g) between latents by the metric (not for `pose`, which compares poses: `pose_cost`)."""
        if self.metric == "pose":
            raise ValueError("goal metric 'pose' compares poses, not latents: use pose_cost / start_distance")
        if self.metric == "learned":
            return model.goal_distance(z, g)
        if self.metric == "joints":
            err = angle_error(model.joint_angles(z), model.joint_angles(g))
            return (err / self.joint_scale).pow(2).sum(-1)
        if self.metric == "cosine":
            return 1.0 - torch.nn.functional.cosine_similarity(z, g.expand_as(z), dim=-1)
        d = z - g
        if self.metric == "l1":
            return d.abs().sum(-1)
        sq = d.pow(2).sum(-1)
        return sq if self.metric == "sq_l2" else sq.clamp_min(1e-12).sqrt()

    def __call__(self, r: Rollout) -> Tensor:
        if self.metric == "pose":
            return self._pose(r)
        if r.goal_z is None:
            raise ValueError("objective 'goal' is enabled but plan() got no goal_z")
        g = r.goal_z.reshape(-1)
        if g.shape[0] != r.latents.shape[-1]:
            raise ValueError(f"goal_z has {g.shape[0]} dims, the model's latent has {r.latents.shape[-1]}")
        if self.every_step:
            return self.distance(r.latents, g, r.model) @ r.discounts
        return self.distance(r.latents[:, -1], g, r.model)

    def _pose(self, r: Rollout) -> Tensor:
        pg = self._pose_goal(r.pose_goal)
        history = pg.history.reshape(1, *pg.history.shape[-2:])
        if self.every_step:
            poses = torch.stack([r.model.motion(history, r.actions[:, : t + 1]) for t in range(r.actions.shape[1])], 1)
            return self.pose_cost(poses, pg.pose) @ r.discounts
        return self.pose_cost(r.model.motion(history, r.actions), pg.pose)
