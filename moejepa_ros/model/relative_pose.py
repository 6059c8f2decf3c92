"""Relative pose in the robot's plane: the pair pose net R, the place net L, the motion model M, and pose
arithmetic.

A goal image is planned for in pose space rather than in the latent (whose pose is too coarse on a
mobile base, BENCHMARKS.md section 8.1): R(image, goal image) says where the goal is in the current
robot frame, M(commands) where the candidate's commands take the robot, and the goal objective's
`pose` metric compares the two. Where the bags' odometry shares one frame across drives (a robot
localised in a map, or one recording without drift), the place net L(image) → where the image was taken
in that frame places a goal better than R (L(goal) ⊖ L(image): R reads goals to the side as turns,
BENCHMARKS.md section 8.3); `moejepa-train pose` (training/pose.py) trains all three from odometry and
keeps L only when it places held-out goals better. Odometry is never their input.

A pose is (dx, dy, dψ): metres along the robot's forward and left axes, radians anticlockwise. The
networks regress (dx, dy, c·sin dψ, c·(cos dψ − 1)) with c = `yaw_scale` metres per radian: smooth
through ±π, zero at the identity, and one loss scale for position and heading.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import RelativePoseConfig
from .encoder import to_float


def wrap_angle(a: Tensor) -> Tensor:
    """Angles into (-π, π]."""
    return torch.atan2(torch.sin(a), torch.cos(a))


def relative_pose(a: Tensor, b: Tensor) -> Tensor:
    """Pose b [..., 3] (x, y, yaw) expressed in pose a's frame: b ⊖ a."""
    d = b[..., :2] - a[..., :2]
    c, s = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    return torch.stack(
        [c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1], wrap_angle(b[..., 2] - a[..., 2])], -1
    )


def compose(a: Tensor, b: Tensor) -> Tensor:
    """Pose b [..., 3] given in pose a's frame, expressed in a's parent frame: a ⊕ b (so a ⊕ (b ⊖ a) = b)."""
    c, s = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    return torch.stack(
        [
            a[..., 0] + c * b[..., 0] - s * b[..., 1],
            a[..., 1] + s * b[..., 0] + c * b[..., 1],
            wrap_angle(a[..., 2] + b[..., 2]),
        ],
        -1,
    )


def invert(p: Tensor) -> Tensor:
    """The inverse pose [..., 3]: p ⊕ invert(p) is the identity."""
    c, s = torch.cos(p[..., 2]), torch.sin(p[..., 2])
    return torch.stack([-(c * p[..., 0] + s * p[..., 1]), s * p[..., 0] - c * p[..., 1], wrap_angle(-p[..., 2])], -1)


def pose_to_vector(pose: Tensor, yaw_scale: float) -> Tensor:
    """(dx, dy, dψ) [..., 3] → the regressed (dx, dy, c·sin dψ, c·(cos dψ − 1)) [..., 4]."""
    p = pose[..., 2]
    return torch.stack([pose[..., 0], pose[..., 1], yaw_scale * torch.sin(p), yaw_scale * (torch.cos(p) - 1)], -1)


def vector_to_pose(v: Tensor, yaw_scale: float) -> Tensor:
    """The regressed vector [..., 4] → (dx, dy, dψ) [..., 3], dψ = atan2(v2, v3 + c)."""
    return torch.stack([v[..., 0], v[..., 1], torch.atan2(v[..., 2], v[..., 3] + yaw_scale)], -1)


def place_to_vector(pose: Tensor, yaw_scale: float) -> Tensor:
    """A pose (x, y, ψ) [..., 3] in the odometry frame → L's regressed (x, y, c·cos ψ, c·sin ψ) [..., 4]."""
    p = pose[..., 2]
    return torch.stack([pose[..., 0], pose[..., 1], yaw_scale * torch.cos(p), yaw_scale * torch.sin(p)], -1)


def vector_to_place(v: Tensor) -> Tensor:
    """L's regressed vector [..., 4] → (x, y, ψ) [..., 3], ψ = atan2(v3, v2)."""
    return torch.stack([v[..., 0], v[..., 1], torch.atan2(v[..., 3], v[..., 2])], -1)


def conv_regressor(c_in: int, cfg: RelativePoseConfig, image_size: int) -> nn.Sequential:
    """4x4 stride-2 convs with GELU over `cfg.channels`, a GELU layer of `cfg.hidden` and a linear output of 4."""
    layers = []
    for c in cfg.channels:
        layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GELU()]
        c_in = c
    side = image_size // 2 ** len(cfg.channels)
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(c_in * side * side, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, 4)
    )


class PairPoseNet(nn.Module):
    """R(image, goal image) → the regressed pose vector of the goal in the image's robot frame.

    The two RGB frames are concatenated to 6 channels (one fused network sees both views at once)."""

    def __init__(self, cfg: RelativePoseConfig, image_size: int):
        super().__init__()
        self.net = conv_regressor(6, cfg, image_size)

    def forward(self, image: Tensor, goal: Tensor) -> Tensor:
        """image, goal: [N, S, S, 3] (uint8 or float in [0, 1]) → [N, 4]."""
        x = torch.cat([to_float(image), to_float(goal)], -1).permute(0, 3, 1, 2)
        return self.net(x)


class PlaceNet(nn.Module):
    """L(image) → the regressed place vector (x, y, c·cos ψ, c·sin ψ) of where the image was taken, in the
    frame the bags' odometry shares across drives."""

    def __init__(self, cfg: RelativePoseConfig, image_size: int):
        super().__init__()
        self.net = conv_regressor(3, cfg, image_size)

    def forward(self, image: Tensor) -> Tensor:
        """image: [N, S, S, 3] (uint8 or float in [0, 1]) → [N, 4]."""
        return self.net(to_float(image).permute(0, 3, 1, 2))


class MotionModel(nn.Module):
    """M(last K executed commands, the next H_m commands zero-padded after h, h/H_m) → the regressed
    pose vector after h steps, in the robot's frame at the first of the next commands.

    Commands are in real units; they are normalised onto [-1, 1] by the action range the model was
    trained with (buffers `action_low` / `action_high`, the checkpoint's bounds at training time)."""

    def __init__(self, cfg: RelativePoseConfig, action_dim: int):
        super().__init__()
        self.history, self.horizon = cfg.history, cfg.horizon
        self.register_buffer("action_low", -torch.ones(action_dim))
        self.register_buffer("action_high", torch.ones(action_dim))
        d_in = (cfg.history + cfg.horizon) * action_dim + 1
        self.net = nn.Sequential(
            nn.Linear(d_in, cfg.motion_hidden),
            nn.GELU(),
            nn.Linear(cfg.motion_hidden, cfg.motion_hidden),
            nn.GELU(),
            nn.Linear(cfg.motion_hidden, 4),
        )

    def normalise(self, a: Tensor) -> Tensor:
        half = (self.action_high - self.action_low) / 2
        return (a - (self.action_high + self.action_low) / 2) / half

    def forward(self, history: Tensor, commands: Tensor) -> Tensor:
        """history [N, K, A] (oldest first), commands [N, h, A] with 1 <= h <= H_m → [N, 4]."""
        n, h, a = commands.shape
        if history.shape[-2:] != (self.history, a) or not 1 <= h <= self.horizon:
            raise ValueError(
                f"motion model: history must be [N, {self.history}, {a}] and 1..{self.horizon} commands, "
                f"got {tuple(history.shape)} and {tuple(commands.shape)}"
            )
        future = commands.new_zeros(n, self.horizon, a)
        future[:, :h] = self.normalise(commands)
        past = self.normalise(history).expand(n, -1, -1)
        frac = commands.new_full((n, 1), h / self.horizon)
        return self.net(torch.cat([past.reshape(n, -1), future.reshape(n, -1), frac], -1))
