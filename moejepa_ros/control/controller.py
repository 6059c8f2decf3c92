"""`LatentController`: the one Mode-2 control step, frame stack → encode once → plan (warm start) →
clamped first action, or the zero command and a reason.

No rclpy here: planner_node owns topics and threads, `PlannerPolicy` owns an episode loop, and
this class owns the model, the planner, the goal latent and the safety rules (non-finite latent
or plan → zero command + error), so the step that runs on the robot is the one that training,
evaluation and every bench run, and it can be tested without DDS.

Latents are encoded under `no_grad`, not `inference_mode`: the gradient planners (`gradient`,
`cem_gradient`) differentiate the rollout from z0 with respect to the actions, and autograd
refuses inference tensors.

With the goal metric `pose` the controller also keeps the goal image and the last K executed
commands: once per replan the model's place (or pair pose) net places the goal in the current robot
frame, the goal tracker blends that with the last estimate carried through the motion model
(control/goal_tracker.py), and the planner's motion model continues from those commands (`PoseGoal`).
When the model has a free-space map (with the place net), a goal out of plain sight is reached by way of
waypoints on it (control/route.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from moejepa_ros import codecs
from moejepa_ros.control.bounds import check_bounds
from moejepa_ros.control.cuda_graphs import GraphedRollout
from moejepa_ros.control.device import check_encoder_precision, encoder_autocast
from moejepa_ros.control.frame_upload import FrameUpload
from moejepa_ros.control.goal_tracker import GoalTracker
from moejepa_ros.control.route import Route
from moejepa_ros.model.relative_pose import compose, invert, relative_pose
from moejepa_ros.planning import Plan, PlannerConfig, PoseGoal, build_objectives, make_planner

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


@dataclass
class Decision:
    """One control step's outcome; `action` is always safe to publish."""

    action: np.ndarray  # float32 [A]: clamped plan action, or the zero command
    level: int = OK
    message: str = "ok"
    plan_actions: np.ndarray | None = None  # [H, A] (clamped), when a plan was made
    predicted_cost: float = float("nan")
    encode_ms: float = 0.0
    plan_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class LatentController:
    """Model + planner + goal; `act(frames)` is the whole Mode-2 control step.

    On a CUDA device, `encoder_precision` (fp32 | fp16 | bf16; bf16 also on CPU) autocasts the torch
    encoder, frames go up through a pinned staging buffer (`FrameUpload`), and `cuda_graphs` plans with
    a `GraphedRollout` of the torch model; neither option touches the onnxruntime backend.
    """

    def __init__(
        self,
        model: Any,
        device: str | torch.device,
        planner_cfg: PlannerConfig | Mapping[str, Any],
        objectives: Mapping[str, Mapping[str, Any]],
        action_low,
        action_high,
        encoder_precision: str = "fp32",
        cuda_graphs: bool = False,
    ):
        self.model = model
        self.device = torch.device(device)
        check_encoder_precision(encoder_precision, self.device)
        torch_model = isinstance(model, torch.nn.Module)
        if encoder_precision != "fp32" and not torch_model:
            raise ValueError(
                f"encoder_precision={encoder_precision!r} applies to the torch backend only: "
                f"{type(model).__name__} runs its exported graphs as they are"
            )
        self.encoder_precision = encoder_precision
        self.upload = FrameUpload(self.device)
        # what the planner rolls out: the model, or its CUDA-graph view (torch model on a CUDA device)
        self.plan_model = GraphedRollout(model) if cuda_graphs and torch_model and self.device.type == "cuda" else model
        cfg = model.cfg
        self.frame_stack, self.image_size = int(cfg.frame_stack), int(cfg.image_size)
        self.action_dim = int(model.action_dim)
        check_bounds(np.ravel(action_low).tolist(), np.ravel(action_high).tolist(), self.action_dim)
        self.low = np.asarray(action_low, np.float32).reshape(-1)
        self.high = np.asarray(action_high, np.float32).reshape(-1)
        self.cfg = planner_cfg if isinstance(planner_cfg, PlannerConfig) else PlannerConfig.from_dict(planner_cfg)
        self.objective_spec = copy.deepcopy({k: dict(v or {}) for k, v in objectives.items()})
        self.check_objectives(self.objective_spec)  # unknown names / params / missing heads raise here
        self.goal_z: torch.Tensor | None = None
        self.goal_frame: torch.Tensor | None = None  # [1, S, S, 3] uint8: the goal image (set_goal), for `pose`
        self.goal_place: torch.Tensor | None = None  # L(goal image) [3], with a place net
        self.route: Route | None = None  # the way to it on the map (control/route.py)
        self.waypoint: np.ndarray | None = None  # the last replan's waypoint (x, y, ψ) on the map, or None
        self._route_lookahead = 0.0
        rp = getattr(cfg, "relative_pose", None)
        # the last K executed commands (real units, oldest first), what the motion model continues from
        self.history = np.zeros((rp.history if rp is not None else 0, self.action_dim), np.float32)
        self.goal_tracker = GoalTracker()  # the goal's pose carried over replans (goal metric pose)
        self.planner = None
        self.last_plan: Plan | None = None  # the planner's raw result of the last step (None if it did not plan)
        self._idle_reason: str | None = None
        self._routing: dict[str, Any] = {}
        self._routing_t = -float("inf")
        self.routing_period_s = 1.0
        self._rebuild()

    # ------------------------------------------------------------------ configuration
    def check_objectives(self, spec: Mapping[str, Mapping[str, Any]]) -> None:
        """ValueError naming the problem: an unknown objective or option, or an enabled objective
        that needs a head this checkpoint lacks (e.g. goal metric `learned` without a goal head),
        caught now rather than when the first goal image arrives."""
        objs = build_objectives(spec)
        for o in objs.enabled:
            o.check(self.model)
        self._check_pose_horizon(objs, self.cfg)

    def _check_pose_horizon(self, objs, cfg: PlannerConfig) -> None:
        """The goal metric `pose` scores the pose after horizon x hold commands: the motion model's horizon
        bounds it."""
        if not (objs.needs_goal and objs["goal"].metric == "pose"):
            return
        limit = self.model.cfg.relative_pose.horizon
        if cfg.horizon * cfg.hold > limit:
            raise ValueError(
                f"goal metric pose: planner horizon x hold = {cfg.horizon} x {cfg.hold} = {cfg.horizon * cfg.hold} "
                f"steps exceeds the motion model's horizon {limit} (model_config relative_pose.horizon)"
            )

    def _effective_objectives(self) -> dict[str, dict[str, Any]]:
        """The goal objective is on only while a goal latent exists (goal_image switches it on)."""
        spec = copy.deepcopy(self.objective_spec)
        if "goal" in spec and self.goal_z is None:
            spec["goal"]["enabled"] = False
        return spec

    def _rebuild(self) -> None:
        spec = self._effective_objectives()
        objs = build_objectives(spec)
        self._plans_pose = objs.needs_goal and objs["goal"].metric == "pose"
        if self._plans_pose:
            self.goal_tracker.gain = objs["goal"].pose_gain
            self.goal_tracker.gate = objs["goal"].pose_gate
            self._route_lookahead = objs["goal"].route_lookahead
        if not objs.enabled:
            self._idle_reason = (
                "waiting for a goal image (no other objective is enabled)"
                if self.objective_spec.get("goal", {}).get("enabled")
                else "no objective is enabled"
            )
            return
        self._idle_reason = None
        if (
            self.planner is None
            or not torch.equal(self.planner.action_low.cpu(), torch.from_numpy(self.low))
            or not torch.equal(self.planner.action_high.cpu(), torch.from_numpy(self.high))
        ):
            self.planner = make_planner(self.cfg, self.plan_model, objs, self.low, self.high, self.device)
        else:
            self.planner.update_objectives(objs)

    def update(
        self,
        planner_cfg: PlannerConfig | None = None,
        objectives: Mapping[str, Mapping[str, Any]] | None = None,
        action_low=None,
        action_high=None,
    ) -> None:
        """Apply live changes (validated by the caller); keeps the warm start where possible."""
        if action_low is not None or action_high is not None:
            low = np.ravel(action_low if action_low is not None else self.low).tolist()
            high = np.ravel(action_high if action_high is not None else self.high).tolist()
            check_bounds(low, high, self.action_dim)
            self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)
        if objectives is not None:
            self.check_objectives(objectives)
            self.objective_spec = copy.deepcopy({k: dict(v or {}) for k, v in objectives.items()})
        if planner_cfg is not None:
            self._check_pose_horizon(build_objectives(self.objective_spec), planner_cfg)
            self.cfg = planner_cfg
            if self.planner is not None:
                if planner_cfg.method != self.planner.cfg.method:
                    self.planner.reset()
                self.planner.update_config(planner_cfg)
        self._rebuild()

    def reset(self) -> None:
        """Forget the warm start and the tracked goal pose (camera stall, new goal, new episode)."""
        self.goal_tracker.clear()
        if self.planner is not None:
            self.planner.reset()

    @property
    def plans_pose(self) -> bool:
        """Whether the goal objective in force plans in pose space (metric `pose`; on while a goal is set)."""
        return self._plans_pose

    @property
    def needs_goal(self) -> bool:
        """Whether the configured objectives include an enabled goal objective (it idles without a goal)."""
        return build_objectives(self.objective_spec).needs_goal

    # ------------------------------------------------------------------ goal
    def set_goal(self, frame: np.ndarray | None) -> None:
        """Goal image [S, S, 3] uint8 (already resized) → goal latent (the frame repeated k times)."""
        if frame is None:
            self.set_goal_latent(None)
        else:
            self.set_goal_latent(self.encode(np.repeat(frame[None], self.frame_stack, axis=0)).float())
            self.goal_frame = torch.from_numpy(np.array(frame)).to(self.device)[None]  # own copy: kept
            if getattr(self.model, "place_net", None) is not None:  # L(goal) once per goal, not per replan
                with torch.no_grad():
                    self.goal_place = self.model.place(self.goal_frame)[0].float()
                if getattr(self.model, "free_space", None) is not None:
                    self.route = Route(*self.model.free_space.numpy(), self.goal_place[:2].cpu().numpy())

    def set_goal_latent(self, goal_z: torch.Tensor | None) -> None:
        """Set (or clear) the goal latent [D]; forgets the warm start and switches the goal objective. A goal
        latent has no goal image: the goal metric `pose` needs `set_goal`."""
        self.goal_z = None if goal_z is None else goal_z.detach().to(self.device).float()
        self.goal_frame = self.goal_place = self.route = self.waypoint = None
        self.reset()
        self._rebuild()

    # ------------------------------------------------------------------ control
    def zero(self) -> np.ndarray:
        """The safe command: exactly zero (stop), whatever the planning bounds."""
        return np.zeros(self.action_dim, np.float32)

    @torch.no_grad()  # not inference_mode: the gradient planners backprop through the rollout from z
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """Frame stack uint8 [k, S, S, 3] (oldest first) → latent [D]."""
        if frames.shape != (self.frame_stack, self.image_size, self.image_size, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"frames must be uint8 {(self.frame_stack, self.image_size, self.image_size, 3)}, "
                f"got {frames.dtype} {frames.shape}"
            )
        with encoder_autocast(self.encoder_precision, self.device):
            return self.model.encode(self.upload(frames))[0].float()

    @torch.no_grad()
    def pose_goal(self, frame: np.ndarray) -> PoseGoal:
        """Where the goal image was taken in the robot frame of `frame` [S, S, 3] (the model's place or pair pose
        net, once per replan, blended with the last estimate by the goal tracker), with the last executed commands."""
        if self.goal_frame is None:
            raise ValueError("goal metric pose needs a goal image (set_goal), not a goal latent")
        image = torch.from_numpy(np.array(frame)).to(self.device)[None]  # a writable copy (12 KB at 64 px)
        history = torch.from_numpy(self.history).to(self.device)
        if self.goal_place is not None:  # the place net: L(goal) ⊖ L(image), L(goal) kept from set_goal
            placed = relative_pose(self.model.place(image)[0].float(), self.goal_place)
        else:
            placed = self.model.relative_pose(image, self.goal_frame)[0].float()
        goal = self.goal_tracker.update(placed, self.model, history)
        self.waypoint = None
        if self.route is not None and self._route_lookahead > 0:
            here = compose(self.goal_place, invert(goal))  # where the robot is on the map, as tracked
            self.waypoint = self.route.waypoint(here.cpu().numpy(), self._route_lookahead)
            if self.waypoint is not None:
                wp = torch.as_tensor(self.waypoint, dtype=here.dtype, device=here.device)
                return PoseGoal(relative_pose(here, wp), history)
        return PoseGoal(goal, history)

    def executed(self, action: np.ndarray) -> None:
        """Note a command that was sent (the motion model's history; `act` notes the action it returns)."""
        self.goal_tracker.executed(action)
        if len(self.history):
            self.history = np.concatenate([self.history[1:], np.asarray(action, np.float32).reshape(1, -1)])

    def at_rest(self) -> None:
        """The robot starts at rest (a new episode): the motion model's history becomes zero commands."""
        self.history = np.zeros_like(self.history)
        self.goal_tracker.clear()

    def warm_up(self) -> None:
        """Encode a blank stack, plan once from it and forget that plan: first-call allocations and
        kernel selection (and on CUDA the graph captures) happen here, not in the first control steps.
        A controller waiting for a goal plans towards a stand-in goal (the blank latent), then waits again."""
        z = self.encode(np.zeros((self.frame_stack, self.image_size, self.image_size, 3), np.uint8))
        stand_in = self.goal_z is None and self.needs_goal
        if stand_in:
            self.set_goal_latent(z)
        if self._idle_reason is None and self.planner is not None:
            pose_goal = None
            if self.plans_pose:  # the blank image as its own goal: R runs once, the goal is where the robot is
                blank = np.zeros((self.image_size, self.image_size, 3), np.uint8)
                saved, self.goal_frame = self.goal_frame, torch.from_numpy(blank).to(self.device)[None]
                pose_goal = self.pose_goal(blank)
                self.goal_frame = saved
            self.planner.plan(z, self.goal_z, pose_goal=pose_goal)
        if stand_in:
            self.set_goal_latent(None)
        else:
            self.reset()

    def act(self, frames: np.ndarray) -> Decision:
        """Encode the stack once, plan, return the clamped first action (or zero + a reason). The returned
        action is taken as executed (the motion model's history); with the goal metric `pose` the goal's
        pose is computed here, its time counted in `encode_ms`."""
        decision = self._act(frames)
        self.executed(decision.action)
        return decision

    def _act(self, frames: np.ndarray) -> Decision:
        self.last_plan = None
        if self._idle_reason is not None or self.planner is None:
            return Decision(self.zero(), WARN, self._idle_reason or "no planner")
        t0 = time.perf_counter()
        z = self.encode(frames)
        pose_goal = None
        if self.plans_pose:
            if self.goal_frame is None:
                self.reset()
                return Decision(self.zero(), ERROR, "goal metric pose needs a goal image (set_goal); zero command")
            pose_goal = self.pose_goal(frames[-1])
        if self.device.type == "cuda":  # encode_ms is the encoder's run, not its launch (decide syncs next anyway)
            torch.cuda.synchronize(self.device)
        return self.decide(z, encode_ms=(time.perf_counter() - t0) * 1e3, pose_goal=pose_goal)

    def decide(self, z: torch.Tensor, encode_ms: float = 0.0, pose_goal: PoseGoal | None = None) -> Decision:
        """The step after the encoder: plan from latent z[D] (warm start), clamp; a non-finite latent or
        plan gives the zero command + ERROR. Distillation labels replay latents with it. `pose_goal`: the
        goal in the robot's frame (goal metric `pose`, see `pose_goal`)."""
        self.last_plan = None
        if self._idle_reason is not None or self.planner is None:
            return Decision(self.zero(), WARN, self._idle_reason or "no planner", encode_ms=encode_ms)
        if not bool(torch.isfinite(z).all()):
            self.reset()
            return Decision(
                self.zero(), ERROR, "encoder produced a non-finite latent; zero command", encode_ms=encode_ms
            )
        t1 = time.perf_counter()
        if pose_goal is not None and not bool(torch.isfinite(pose_goal.pose).all()):
            self.reset()
            return Decision(self.zero(), ERROR, "goal pose is not finite; zero command", encode_ms=encode_ms)
        plan = self.last_plan = self.planner.plan(z, self.goal_z, pose_goal=pose_goal)
        t2 = time.perf_counter()
        first = plan.first_action.detach().float().cpu().numpy()
        actions = plan.actions.detach().float().cpu().numpy()
        cost = float(plan.predicted_cost)
        timing = dict(encode_ms=encode_ms, plan_ms=(t2 - t1) * 1e3)
        if not (np.all(np.isfinite(first)) and np.all(np.isfinite(actions)) and np.isfinite(cost)):
            self.reset()  # never warm-start from a poisoned plan
            return Decision(
                self.zero(), ERROR, "plan is not finite (NaN/inf); zero command", predicted_cost=cost, **timing
            )
        a = codecs.clamp_action(first, self.low, self.high)
        actions = np.clip(actions, self.low, self.high)
        if time.monotonic() - self._routing_t > self.routing_period_s:
            self._probe_routing(z, plan.actions)
        return Decision(a, OK, "ok", plan_actions=actions, predicted_cost=cost, **timing)

    @torch.inference_mode()
    def _probe_routing(self, z: torch.Tensor, actions: torch.Tensor) -> None:
        """Expert loads along the chosen plan (one sample, H steps): planning rollouts skip the
        routing statistics for speed, so they are recomputed here about once a second."""
        self._routing_t = time.monotonic()
        predictor = getattr(self.model, "predictor", None)
        stats = getattr(self.model, "routing_stats", None)
        if predictor is None or not callable(stats):
            return
        try:
            predictor.rollout(z.reshape(1, -1), actions.reshape(1, *actions.shape[-2:]).float(), need_aux=True)
            self._routing = {k: v.detach().float().cpu().numpy().reshape(-1).tolist() for k, v in stats().items()}
        except (TypeError, ValueError, RuntimeError):  # a model without routing statistics
            self._routing = {}

    def routing(self) -> dict[str, Any]:
        """Expert load fractions [N_experts] and router entropy along the last probed plan."""
        return dict(self._routing)
