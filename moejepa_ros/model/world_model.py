"""`WorldModel`: encoder + EMA target, MoE predictor, Stage-1 predictor and heads, with the training loss."""

from __future__ import annotations

import torch
from torch import nn

from . import losses as L
from .config import ModelConfig, RelativePoseConfig
from .encoder import ema_update, make_encoder, make_target
from .free_space import FreeSpace
from .heads import ActorHead, CostHead, GoalDistanceHead, QEnsemble, RewardHead, ValueHead
from .joint_probe import JointProbe
from .predictor import FuturePredictor, Predictor
from .relative_pose import MotionModel, PairPoseNet, PlaceNet, vector_to_place, vector_to_pose
from .relative_pose import relative_pose as pose_in_frame

WINDOW_KEYS = ("frames", "actions", "rewards")


class WorldModel(nn.Module):
    """Action-conditioned MoE JEPA world model (see docs/interfaces.md for the contract)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.latent_dim, self.action_dim = cfg.latent_dim, cfg.action_dim
        self.encoder = make_encoder(cfg)
        self.target_encoder = make_target(self.encoder)
        self.predictor = Predictor(cfg)
        self.stage1_predictor = FuturePredictor(cfg)
        self.reward_head = RewardHead(cfg)
        self.value_head = ValueHead(cfg)
        self.cost_head = CostHead(cfg)
        self.actor_head = ActorHead(cfg)
        self.q_heads = QEnsemble(cfg) if cfg.num_q > 0 else None
        self.goal_head = GoalDistanceHead(cfg) if cfg.goal_embed_dim > 0 else None
        rp = cfg.relative_pose
        self.pose_net = PairPoseNet(rp, cfg.image_size) if rp is not None else None
        self.motion_model = MotionModel(rp, cfg.action_dim) if rp is not None else None
        self.place_net = PlaceNet(rp, cfg.image_size) if rp is not None and rp.place else None
        self.free_space = FreeSpace(rp.free_space) if rp is not None and rp.free_space else None
        self.joint_probe = (
            JointProbe(cfg.latent_dim, cfg.joint_probe, cfg.joint_probe_hidden) if cfg.joint_probe > 0 else None
        )

    # ------------------------------------------------------------------ encoders
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [..., k, H, W, 3] → z [..., D] with the online encoder."""
        return self.encoder(frames)

    @torch.no_grad()
    def encode_target(self, frames: torch.Tensor) -> torch.Tensor:
        """Same as `encode` with the EMA target encoder; never carries gradients."""
        return self.target_encoder(frames)

    def update_target(self, momentum: float | None = None) -> None:
        """EMA step of the target encoder towards the online one (cfg.ema_momentum by default)."""
        ema_update(self.target_encoder, self.encoder, self.cfg.ema_momentum if momentum is None else momentum)

    # ------------------------------------------------------------- latent model
    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """z0[N, D] (or [1, D] shared), actions[N, H, A] → z_1…z_H [N, H, D]."""
        return self.predictor.rollout(z0, actions)

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.reward_head(z, a)

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return self.value_head(z)

    def cost(self, z: torch.Tensor) -> torch.Tensor:
        return self.cost_head(z)

    def q(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Q_i(z, a) of every ensemble member [num_q, ...] (a in command units); needs num_q > 0."""
        if self.q_heads is None:
            raise ValueError("this model has no Q heads (model_config num_q=0): the online MBRL loop trains them")
        return self.q_heads(z, a)

    def actor(self, z: torch.Tensor) -> torch.Tensor:
        return self.actor_head(z)

    @property
    def heads(self) -> tuple[str, ...]:
        """The optional planner heads this model offers (see planning.protocol.has_head)."""
        return (
            ("reward", "value", "cost", "actor")
            + (("q",) if self.q_heads is not None else ())
            + (("goal_distance",) if self.goal_head is not None else ())
            + (("relative_pose",) if self.pose_net is not None else ())
            + (("joint_angles",) if self.joint_probe is not None else ())
        )

    def joint_angles(self, z: torch.Tensor) -> torch.Tensor:
        """An arm's joint angles [..., J] (radians) read from latents z [..., D]; needs joint_probe > 0."""
        if self.joint_probe is None:
            raise ValueError(
                "this model has no joint-angle probe (model_config joint_probe=0): "
                "train one with `moejepa-train joints` (needs /joint_states in the bags)"
            )
        return self.joint_probe(z)

    def goal_distance(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Learned steps-to-go from latents z[..., D] to the goal latent g; needs goal_embed_dim > 0."""
        if self.goal_head is None:
            raise ValueError(
                "this model has no goal-distance head (model_config goal_embed_dim=0): "
                "train one with `moejepa-train goal`"
            )
        return self.goal_head(z, g)

    def _pose_parts(self) -> RelativePoseConfig:
        if self.pose_net is None:
            raise ValueError(
                "this model has no relative-pose parts (model_config relative_pose=null): "
                "train them with `moejepa-train pose` (needs odometry in the bags)"
            )
        return self.cfg.relative_pose

    def relative_pose(self, image: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Pose (dx, dy, dψ) [N, 3] of where `goal` [N, S, S, 3] was taken, in the robot frame of `image`:
        L(goal) ⊖ L(image) with a place net, else R(image, goal)."""
        c = self._pose_parts().yaw_scale
        if self.place_net is not None:
            return pose_in_frame(self.place(image), self.place(goal))
        return vector_to_pose(self.pose_net(image, goal), c)

    def place(self, image: torch.Tensor) -> torch.Tensor:
        """Where `image` [N, S, S, 3] was taken, (x, y, ψ) [N, 3] in the bags' odometry frame (the place net)."""
        self._pose_parts()
        if self.place_net is None:
            raise ValueError("this model has no place net (relative_pose.place=false): `moejepa-train pose` adds one")
        return vector_to_place(self.place_net(image))

    def motion(self, history: torch.Tensor, commands: torch.Tensor) -> torch.Tensor:
        """Pose (dx, dy, dψ) [N, 3] after `commands` [N, h, A] (real units, one per control step, h <= the
        motion horizon), given the last executed commands `history` [N or 1, K, A]."""
        c = self._pose_parts().yaw_scale
        return vector_to_pose(self.motion_model(history, commands), c)

    def imagine(self, z0: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Roll out and score: latents [N,H,D], rewards [N,H] (for each action), values/costs [N,H]."""
        latents = self.rollout(z0, actions)
        N = actions.shape[0]
        z_before = torch.cat([z0.expand(N, -1).unsqueeze(1), latents[:, :-1]], 1)
        return {
            "latents": latents,
            "rewards": self.reward(z_before, actions),
            "values": self.value(latents),
            "costs": self.cost(latents),
        }

    # ------------------------------------------------------------- routing stats
    @property
    def last_aux(self) -> dict[str, torch.Tensor] | None:
        return self.predictor.last_aux

    def routing_stats(self) -> dict[str, torch.Tensor]:
        """Expert load fractions [N_experts] and mean router entropy of the last predictor call."""
        aux = self.predictor.last_aux
        if aux is None:
            return {}
        return {"load": aux["load"].detach(), "entropy": aux["entropy"].detach()}

    @property
    def preprocessing(self) -> dict:
        c = self.cfg
        return {
            "image_size": c.image_size,
            "frame_stack": c.frame_stack,
            "channels": "rgb8",
            "layout": "[..., k, H, W, 3] uint8, oldest frame first",
            "scale": "x/255 - 0.5",
        }

    # --------------------------------------------------------------------- loss
    def _split_window(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        for key in WINDOW_KEYS:
            if key not in batch:
                raise ValueError(f"WorldModel.loss: batch is missing {key!r} (has {sorted(batch)})")
        frames, actions, rewards = batch["frames"], batch["actions"], batch["rewards"]
        k, s = self.cfg.frame_stack, self.cfg.image_size
        if frames.dim() != 5 or tuple(frames.shape[2:]) != (s, s, 3):
            raise ValueError(f"WorldModel.loss: frames must be [B, T, {s}, {s}, 3], got {tuple(frames.shape)}")
        B, T = frames.shape[:2]
        H = T - k
        if H < 1:
            raise ValueError(f"WorldModel.loss: window T={T} must exceed frame_stack={k}")
        if tuple(actions.shape) != (B, T, self.action_dim):
            raise ValueError(
                f"WorldModel.loss: actions must be [{B}, {T}, {self.action_dim}], got {tuple(actions.shape)}"
            )
        if tuple(rewards.shape) != (B, T):
            raise ValueError(f"WorldModel.loss: rewards must be [{B}, {T}], got {tuple(rewards.shape)}")
        # stack j (0..H) holds frames j … j+k-1, i.e. the observation at time t0+j with t0 = k-1
        stacks = frames.unfold(1, k, 1).permute(0, 1, 5, 2, 3, 4)  # [B, H+1, k, s, s, 3]
        return stacks, actions[:, k - 1 : k - 1 + H].float(), rewards[:, k - 1 : k - 1 + H].float(), H

    def loss(self, batch: dict, stage: int = 2) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and named (detached) terms; stage 1 = action-free JEPA, 2 = MoE world model."""
        if stage not in (1, 2):
            raise ValueError(f"WorldModel.loss: stage={stage!r} must be 1 or 2")
        lw = self.cfg.losses
        stacks, actions, rewards, H = self._split_window(batch)
        z0 = self.encode(stacks[:, 0])
        z_tgt = self.encode_target(stacks[:, 1:])  # [B, H, D], no grad
        w_lat = lw.latent_weight(self.cfg.latent_norm)
        var = L.vicreg_variance(z0, lw.std_target(self.cfg.latent_norm))
        cov = L.vicreg_covariance(z0)
        terms: dict[str, torch.Tensor] = {}
        if stage == 1:
            pred = self.stage1_predictor(z0, torch.arange(1, H + 1))
            latent = L.multistep_latent_loss(pred, z_tgt, lw.rho)
            total = w_lat * latent + lw.vicreg_var * var + lw.vicreg_cov * cov
        else:
            pred = self.predictor.rollout(z0, actions)
            aux = self.predictor.last_aux
            latent = L.multistep_latent_loss(pred, z_tgt, lw.rho)
            z_before = torch.cat([z0.unsqueeze(1), pred[:, :-1]], 1)
            rew = self.reward_head.loss(z_before, actions, rewards).mean()
            val = L.value_loss(self.value(z0), rewards, self.value(z_tgt[:, -1]), lw.gamma)
            pos = z_tgt.reshape(-1, self.latent_dim)
            group = self.cfg.simnorm_group if self.latent_dim % self.cfg.simnorm_group == 0 else 1
            neg = L.cost_negatives(pos, self.cfg.latent_norm, group, lw.cost_noise)
            cst = L.cost_margin_loss(self.cost(pos), self.cost(neg), lw.cost_margin)
            bal, zl = L.moe_aux_loss(aux, lw.load_balance, lw.router_z)
            total = (
                w_lat * latent
                + lw.vicreg_var * var
                + lw.vicreg_cov * cov
                + lw.reward * rew
                + lw.value * val
                + lw.cost * cst
                + bal
                + zl
            )
            terms.update(
                reward=rew,
                value=val,
                cost=cst,
                moe_balance=bal,
                moe_z=zl,
                router_entropy=aux["entropy"],
                expert_load_max=aux["load"].max(),
            )
        terms.update(
            latent=latent,
            latent_1step=L.jepa_latent_loss(pred[:, 0], z_tgt[:, 0]),
            vicreg_var=var,
            vicreg_cov=cov,
            z_std=z0.std(dim=0).mean(),
        )
        terms = {k: v.detach().float() for k, v in terms.items()}
        terms["total"] = total.detach()
        return total, terms
