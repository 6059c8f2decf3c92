"""Model configuration: plain dataclasses that fully rebuild a `WorldModel` (saved in checkpoints)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

ENCODERS = ("conv", "conv_keypoints", "vit")
LATENT_NORMS = ("simnorm", "layernorm")
VIT_POOLS = ("mean", "cls")
CONV_POOLS = ("none", "max")
MOE_IMPLS = ("auto", "grouped", "masked", "loop")


@dataclass
class LossConfig:
    """Loss weights and shapes; defaults follow Switch (α=0.01), ST-MoE (z-loss 1e-3), TD-MPC2 (ρ=0.5)."""

    latent: float | None = None  # multi-step JEPA latent loss; None: 20 for simnorm (TD-MPC2), 1 for layernorm
    rho: float = 0.5  # temporal decay of step j's weight: rho**(j-1) (TD-MPC2 uses 0.5)
    vicreg_var: float = 1.0  # VICReg variance hinge on per-dim std of online latents
    vicreg_cov: float = 0.04  # VICReg off-diagonal covariance penalty
    vicreg_std_target: float | None = None  # None: 1.0 for layernorm, 0.1 for simnorm latents
    reward: float = 0.5
    value: float = 0.1
    gamma: float = 0.99  # discount for the value target
    cost: float = 0.1
    cost_margin: float = 1.0  # energies of negatives are pushed above this
    cost_noise: float = 0.5  # std of the perturbation that makes "perturbed" negatives
    load_balance: float = 0.01  # Switch Transformer auxiliary loss coefficient α
    router_z: float = 1e-3  # ST-MoE router z-loss coefficient

    def latent_weight(self, latent_norm: str) -> float:
        """SimNorm latents live on simplices (entries ~1/8), so their MSE is ~100× smaller."""
        if self.latent is not None:
            return float(self.latent)
        return 1.0 if latent_norm == "layernorm" else 20.0

    def std_target(self, latent_norm: str) -> float:
        if self.vicreg_std_target is not None:
            return float(self.vicreg_std_target)
        return 1.0 if latent_norm == "layernorm" else 0.1


@dataclass
class RelativePoseConfig:
    """The relative-pose parts (`moejepa-train pose`, model/relative_pose.py): the pair pose net
    R(image, goal image), the motion model M(commands) and, when `place`, the place net L(image). Poses are
    (dx, dy, dψ) in the robot's frame, regressed as (dx, dy, c·sin dψ, c·(cos dψ − 1)) with c = `yaw_scale`
    metres per radian."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 64, 128])  # R: 4x4 stride-2 convs on 6 channels
    hidden: int = 256  # R: width of the layer after the convs
    history: int = 4  # M: last executed commands K it sees
    horizon: int = 24  # M: commands H_m it predicts the pose after (the planner's horizon x hold at most)
    motion_hidden: int = 256  # M: width of its two hidden layers
    yaw_scale: float = 0.3  # c, metres per radian in the regressed vector
    place: bool = False  # L (R's channels and hidden, one image) places goals instead of R (`pose` chooses)
    free_space: list[int] = field(default_factory=list)  # [rows, cols] of the drives' free-space map (with L)

    def __post_init__(self) -> None:
        self.channels = list(self.channels)
        self.free_space = list(self.free_space)

    def validate(self, image_size: int) -> None:
        def bad(name: str, value: Any, why: str) -> None:
            raise ValueError(f"ModelConfig.relative_pose.{name}={value!r}: {why}")

        if not self.channels or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in self.channels):
            bad("channels", self.channels, "must be a non-empty list of positive integers")
        if image_size % 2 ** len(self.channels):
            bad("channels", self.channels, f"{len(self.channels)} stride-2 convs must divide image_size={image_size}")
        for name in ("hidden", "history", "horizon", "motion_hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, v, "must be a positive integer")
        if not (isinstance(self.yaw_scale, (int, float)) and math.isfinite(self.yaw_scale) and self.yaw_scale > 0):
            bad("yaw_scale", self.yaw_scale, "must be a finite number > 0")
        if self.free_space and (
            len(self.free_space) != 2
            or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in self.free_space)
        ):
            bad("free_space", self.free_space, "must be [] or [rows, cols] of positive integers")
        if self.free_space and not self.place:
            bad("free_space", self.free_space, "a free-space map is in the place net's frame: needs place=true")
        if not isinstance(self.place, bool):
            bad("place", self.place, "must be true or false")


@dataclass
class ModelConfig:
    """Everything needed to rebuild the world model; `validate()` names any bad field and value."""

    # observation / encoder
    image_size: int = 64
    frame_stack: int = 3
    encoder: str = "conv"
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 64, 128])
    # conv: "max" adds each channel's global max over the last conv map to the flattened map before the latent's
    # projection, features that read the same wherever in the image a pattern is (a fingertip on a target)
    conv_pool: str = "none"
    keypoints: int = 32  # conv_keypoints: spatial-softmax keypoint channels (2 numbers each)
    keypoint_hidden: int = 128  # conv_keypoints: hidden width of the keypoints -> latent MLP
    vit_patch: int = 8
    vit_dim: int = 128
    vit_depth: int = 2
    vit_heads: int = 4
    vit_pool: str = "mean"
    latent_dim: int = 128
    latent_norm: str = "simnorm"
    simnorm_group: int = 8  # TD-MPC2 SimNorm simplex size V=8
    # action-conditioned predictor
    action_dim: int = 2
    action_embed_dim: int = 32
    num_experts: int = 4
    top_k: int = 2
    expert_hidden: int = 128
    router_noise: float = 0.1  # std of Gaussian noise on router logits while training
    dense: bool = False  # True: one expert, no routing (use `dense_equivalent` to size it)
    moe_impl: str = "auto"  # expert evaluation: auto | grouped | masked | loop (loop: tests only)
    # stage-1 (action-free) predictor
    stage1_hidden: int = 256
    stage1_max_offset: int = 16  # largest future offset j it can be asked for
    # heads
    head_hidden: int = 128
    num_q: int = 0  # Q(z, a) ensemble members, learned by TD in the online MBRL loop (0 = no Q heads)
    reward_bins: int = 0  # reward and Q heads: 0 = a scalar by squared error; >= 3 = TD-MPC2's two-hot (101 bins)
    # goal-distance head d(z, g) (steps to reach g from z; 0 = none), trained by `moejepa-train goal`
    goal_embed_dim: int = 0
    goal_hidden: int = 256
    # relative-pose parts R and M (None = none), trained by `moejepa-train pose` from odometry
    relative_pose: RelativePoseConfig | None = None
    # joint-angle probe of an arm (joints; 0 = none), trained by `moejepa-train joints` from /joint_states
    joint_probe: int = 0
    joint_probe_hidden: int = 128
    # target encoder
    ema_momentum: float = 0.99
    ema_momentum_final: float = 0.999  # end of the optional cosine schedule
    losses: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if isinstance(self.losses, dict):  # allow ModelConfig(losses={"latent": 20})
            lknown = {f.name for f in dataclasses.fields(LossConfig)}
            unknown = sorted(set(self.losses) - lknown)
            if unknown:
                raise ValueError(f"ModelConfig.losses: unknown field(s) {unknown}; known: {sorted(lknown)}")
            self.losses = LossConfig(**self.losses)
        if isinstance(self.relative_pose, dict):  # allow ModelConfig(relative_pose={"hidden": 128})
            pknown = {f.name for f in dataclasses.fields(RelativePoseConfig)}
            unknown = sorted(set(self.relative_pose) - pknown)
            if unknown:
                raise ValueError(f"ModelConfig.relative_pose: unknown field(s) {unknown}; known: {sorted(pknown)}")
            self.relative_pose = RelativePoseConfig(**self.relative_pose)
        self.conv_channels = list(self.conv_channels)

    # ------------------------------------------------------------------ helpers
    @property
    def experts(self) -> int:
        return 1 if self.dense else self.num_experts

    @property
    def active_k(self) -> int:
        return 1 if self.dense else self.top_k

    def validate(self) -> ModelConfig:
        def bad(name: str, value: Any, why: str) -> None:
            raise ValueError(f"ModelConfig.{name}={value!r}: {why}")

        for name in (
            "image_size",
            "frame_stack",
            "latent_dim",
            "action_dim",
            "action_embed_dim",
            "num_experts",
            "top_k",
            "expert_hidden",
            "stage1_hidden",
            "stage1_max_offset",
            "head_hidden",
            "keypoints",
            "keypoint_hidden",
            "vit_patch",
            "vit_dim",
            "vit_depth",
            "vit_heads",
            "simnorm_group",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, v, "must be a positive integer")
        for name in ("goal_embed_dim", "goal_hidden", "joint_probe", "joint_probe_hidden", "num_q", "reward_bins"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(name, v, "must be a non-negative integer (goal_embed_dim / joint_probe / num_q 0 = no such head)")
        if self.reward_bins in (1, 2):
            bad("reward_bins", self.reward_bins, "must be 0 (scalar reward and Q) or >= 3 (two-hot bins)")
        if self.encoder not in ENCODERS:
            bad("encoder", self.encoder, f"must be one of {ENCODERS}")
        if self.latent_norm not in LATENT_NORMS:
            bad("latent_norm", self.latent_norm, f"must be one of {LATENT_NORMS}")
        if self.conv_pool not in CONV_POOLS:
            bad("conv_pool", self.conv_pool, f"must be one of {CONV_POOLS}")
        if self.vit_pool not in VIT_POOLS:
            bad("vit_pool", self.vit_pool, f"must be one of {VIT_POOLS}")
        if self.moe_impl not in MOE_IMPLS:
            bad("moe_impl", self.moe_impl, f"must be one of {MOE_IMPLS}")
        if self.latent_norm == "simnorm" and self.latent_dim % self.simnorm_group:
            bad("latent_dim", self.latent_dim, f"must be divisible by simnorm_group={self.simnorm_group}")
        if self.top_k > self.num_experts:
            bad("top_k", self.top_k, f"must be <= num_experts={self.num_experts}")
        if not self.conv_channels or any(not isinstance(c, int) or c < 1 for c in self.conv_channels):
            bad("conv_channels", self.conv_channels, "must be a non-empty list of positive integers")
        if self.encoder == "conv_keypoints" and self.image_size < 4:
            bad("image_size", self.image_size, "too small for the keypoint encoder's stride-2 conv")
        if self.encoder == "conv" and self.image_size < 2 ** len(self.conv_channels):
            bad("image_size", self.image_size, f"too small for {len(self.conv_channels)} stride-2 convs")
        if self.encoder == "vit":
            if self.image_size % self.vit_patch:
                bad("vit_patch", self.vit_patch, f"must divide image_size={self.image_size}")
            if self.vit_dim % self.vit_heads:
                bad("vit_heads", self.vit_heads, f"must divide vit_dim={self.vit_dim}")
        if not (math.isfinite(self.router_noise) and self.router_noise >= 0):
            bad("router_noise", self.router_noise, "must be finite and >= 0")
        for name in ("ema_momentum", "ema_momentum_final"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                bad(name, v, "must be in [0, 1]")
        if self.relative_pose is not None:
            if not isinstance(self.relative_pose, RelativePoseConfig):
                bad("relative_pose", self.relative_pose, "must be a mapping of RelativePoseConfig fields or null")
            self.relative_pose.validate(self.image_size)
        L = self.losses
        for f in dataclasses.fields(L):
            v = getattr(L, f.name)
            if v is None:
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                bad(f"losses.{f.name}", v, "must be a finite number >= 0")
        if not (0.0 < L.rho <= 1.0):
            bad("losses.rho", L.rho, "must be in (0, 1]")
        if not (0.0 <= L.gamma <= 1.0):
            bad("losses.gamma", L.gamma, "must be in [0, 1]")
        return self

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        if not isinstance(d, dict):
            raise ValueError(f"ModelConfig: expected a dict, got {type(d).__name__}")
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        losses = d.pop("losses", {})
        if isinstance(losses, LossConfig):
            losses = dataclasses.asdict(losses)
        if not isinstance(losses, dict):
            raise ValueError(f"ModelConfig.losses={losses!r}: must be a dict")
        if not isinstance(d.get("conv_channels", []), (list, tuple)):
            raise ValueError(f"ModelConfig.conv_channels={d['conv_channels']!r}: must be a list of ints")
        return cls(**d, losses=dict(losses)).validate()


def expert_params(in_dim: int, hidden: int, out_dim: int) -> int:
    """Parameters of one two-layer expert MLP (weights + biases)."""
    return in_dim * hidden + hidden + hidden * out_dim + out_dim


def active_predictor_params(cfg: ModelConfig) -> int:
    """Parameters touched per token by the predictor's experts (+ router), i.e. *active* params."""
    d_in = cfg.latent_dim + cfg.action_embed_dim
    p = cfg.active_k * expert_params(d_in, cfg.expert_hidden, cfg.latent_dim)
    if not cfg.dense and cfg.num_experts > 1:
        p += d_in * cfg.num_experts + cfg.num_experts
    return p


def dense_equivalent(cfg: ModelConfig) -> ModelConfig:
    """A one-expert (dense) config whose active predictor parameters match `cfg`'s MoE."""
    target = active_predictor_params(cfg)
    d_in, d = cfg.latent_dim + cfg.action_embed_dim, cfg.latent_dim
    hidden = max(1, round((target - d) / (d_in + 1 + d)))
    return dataclasses.replace(
        cfg, dense=True, num_experts=1, top_k=1, expert_hidden=hidden, losses=dataclasses.replace(cfg.losses)
    ).validate()
