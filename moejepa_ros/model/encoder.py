"""Observation encoders (conv default, conv + spatial-softmax keypoints, small ViT) with a bounded
latent, plus the EMA target update."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .config import ModelConfig
from .moe import softmax_last


class SimNorm(nn.Module):
    """Simplicial normalisation (TD-MPC2): softmax over consecutive groups of `group` dims."""

    def __init__(self, group: int = 8):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shp = x.shape
        return softmax_last(x.reshape(*shp[:-1], shp[-1] // self.group, self.group)).reshape(shp)


def make_latent_norm(cfg: ModelConfig) -> nn.Module:
    """The bound applied to every latent (encoder output and predictor output alike)."""
    if cfg.latent_norm == "simnorm":
        return SimNorm(cfg.simnorm_group)
    return nn.LayerNorm(cfg.latent_dim)


def check_frames(frames: torch.Tensor, cfg: ModelConfig) -> None:
    k, s = cfg.frame_stack, cfg.image_size
    if frames.dim() < 4 or tuple(frames.shape[-4:]) != (k, s, s, 3):
        raise ValueError(
            f"frames: expected shape [..., {k}, {s}, {s}, 3] (frame_stack, H, W, RGB), got {tuple(frames.shape)}"
        )


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [0,255] → float in [-0.5, 0.5]; float input is taken as already in [0, 1]."""
    if frames.dtype == torch.uint8:
        return frames.float().mul_(1.0 / 255.0).sub_(0.5)
    return frames.float() - 0.5


# Stacks per encoder pass on the CPU. A larger batch runs in chunks of this size: one pass over a TD update's 384
# target stacks allocated ~56 MB of float input and feature maps afresh every update; chunked, the whole update
# ran 1.18-1.53x faster (bench/micro/bench_td_update.py `update_one_pass`, one torch thread, as the runs train).
# On an accelerator, and in a traced, exported or compiled graph, one pass is kept.
CPU_CHUNK = 64


def encode_in_chunks(encode, frames: torch.Tensor) -> torch.Tensor:
    """encode([N, k, H, W, 3]) -> [N, D] over frames [..., k, H, W, 3] -> [..., D], in chunks of CPU_CHUNK
    stacks on the CPU (split along the leading dimensions, so a strided window view is copied chunk by chunk)."""
    lead, stack = frames.shape[:-4], frames.shape[-4:]
    one_pass = torch.compiler.is_compiling() or torch.jit.is_tracing() or frames.device.type != "cpu"
    if one_pass or math.prod(lead) <= CPU_CHUNK:
        z = encode(frames.reshape(-1, *stack))
        return z.reshape(*lead, z.shape[-1])
    inner = math.prod(lead[1:])
    if inner > CPU_CHUNK:  # one slice of the first dimension is already too many: chunk inside each
        return torch.stack([encode_in_chunks(encode, f) for f in frames.unbind(0)])
    return torch.cat([encode(c.reshape(-1, *stack)) for c in frames.split(CPU_CHUNK // inner)]).reshape(*lead, -1)


def stack_channels(frames: torch.Tensor) -> torch.Tensor:
    """[..., k, H, W, C] -> [N, H, W, k*C], frame j's channels at j*C.. (oldest first). Concatenating the frames
    is 1.6x faster on a window's strided stacks than a permute + reshape copy (bench/micro/bench_td_update.py)."""
    k, h, w, c = frames.shape[-4:]
    return torch.cat(frames.reshape(-1, k, h, w, c).unbind(1), -1)


class ConvEncoder(nn.Module):
    """k RGB frames channel-stacked (oldest first) → stride-2 convs → linear → bounded latent.

    With `conv_pool="max"` the linear also reads each channel's global max over the last conv map: a flatten +
    linear learns a pattern (the reacher's fingertip on its target) separately at every place it was seen in
    training, a max over positions reads it the same anywhere (translation invariance, as in a classifier's
    global pooling)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        chans, layers, c_in = cfg.conv_channels, [], 3 * cfg.frame_stack
        for i, c in enumerate(chans):
            layers += [nn.Conv2d(c_in, c, 4 if i == 0 else 3, stride=2, padding=1), nn.SiLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():  # flattened size from a dummy pass, so any image_size works
            n_flat = self.convs(torch.zeros(1, 3 * cfg.frame_stack, cfg.image_size, cfg.image_size)).numel()
        self.pool = cfg.conv_pool == "max"
        self.proj = nn.Linear(n_flat + (chans[-1] if self.pool else 0), cfg.latent_dim)
        self.norm = make_latent_norm(cfg)
        self.to(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_frames(frames, self.cfg)
        return encode_in_chunks(self._encode, frames)

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = stack_channels(frames)
        x = to_float(x).permute(0, 3, 1, 2)  # NCHW view with channels_last strides (no copy)
        x = self.convs(x.contiguous(memory_format=torch.channels_last))
        features = torch.cat([x.flatten(1), x.amax((2, 3))], 1) if self.pool else x.flatten(1)
        return self.norm(self.proj(features))


def coord_channels(n: int, h: int, w: int, device=None, dtype=None) -> torch.Tensor:
    """CoordConv (Liu et al. 2018) input channels: x and y in [-1, 1], shape [n, 2, h, w]."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy]).unsqueeze(0).expand(n, -1, -1, -1)


def spatial_softmax(features: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Expected image coordinates (x, y in [-1, 1]) of each channel's softmax over positions.

    The spatial-softmax keypoint layer of deep spatial autoencoders (Finn et al. 2016) and
    Levine et al. 2016, with a learned per-channel inverse temperature exp(log_scale).
    features [N, K, H, W] -> [N, 2K] laid out (x_1, y_1, x_2, y_2, ...).
    """
    n, k, h, w = features.shape
    logits = features.flatten(2) * log_scale.exp().view(1, k, 1)
    p = torch.softmax(logits.float(), dim=-1).view(n, k, h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=features.device)
    xs = torch.linspace(-1.0, 1.0, w, device=features.device)
    ex = (p.sum(2) * xs).sum(-1)  # marginal over rows, then E[x]
    ey = (p.sum(3) * ys).sum(-1)
    return torch.stack([ex, ey], -1).flatten(1)


class KeypointEncoder(nn.Module):
    """k RGB frames channel-stacked + CoordConv channels → convs at 1/2 resolution → spatial-softmax
    keypoints (x, y per channel) and mean-pooled features → MLP → bounded latent.

    Why: a stride-2 conv stack ending in a flatten+linear latches onto the large static wall
    layout and loses the 1.3-px agent dot; keypoints make *where* things are (the dot, the door)
    a near-linear function of the latent, which latent prediction and goal distances need.
    The first conv has stride 2 (4x4 kernel), the others stride 1, so every feature map stays at
    image_size/2 (the dot spans several cells); `keypoints` 1x1-conv channels feed the softmax.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers, c_in = [], 3 * cfg.frame_stack + 2
        for i, c in enumerate(cfg.conv_channels):
            layers += [nn.Conv2d(c_in, c, 4 if i == 0 else 3, stride=2 if i == 0 else 1, padding=1), nn.SiLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.to_keypoints = nn.Conv2d(c_in, cfg.keypoints, 1)
        # inverse temperature starts at 10: on features of O(1) this already peaks the softmax
        # on the strongest response instead of averaging the whole map towards the centre
        self.log_scale = nn.Parameter(torch.full((cfg.keypoints,), math.log(10.0)))
        self.mlp = nn.Sequential(
            nn.Linear(2 * cfg.keypoints + c_in, cfg.keypoint_hidden),
            nn.SiLU(),
            nn.Linear(cfg.keypoint_hidden, cfg.latent_dim),
        )
        self.norm = make_latent_norm(cfg)

    def features(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints [N, 2K] (x, y in [-1, 1]) and pooled features [N, C] of frames [..., k, H, W, 3]."""
        check_frames(frames, self.cfg)
        k, h, w, c = frames.shape[-4:]
        x = frames.reshape(-1, k, h, w, c).permute(0, 1, 4, 2, 3).reshape(-1, k * c, h, w)
        x = to_float(x)
        x = torch.cat([x, coord_channels(x.shape[0], h, w, x.device, x.dtype)], 1)
        f = self.convs(x)
        return spatial_softmax(self.to_keypoints(f), self.log_scale), f.mean(dim=(2, 3))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_frames(frames, self.cfg)
        return encode_in_chunks(self._encode, frames)

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        kp, pooled = self.features(frames)
        return self.norm(self.mlp(torch.cat([kp, pooled], -1)))


class ViTEncoder(nn.Module):
    """Small ViT: per-frame patch tokens + spatial & temporal position embeddings; mean or CLS pool."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.vit_dim, cfg.vit_patch
        self.patch = nn.Conv2d(3, d, p, stride=p)
        n = (cfg.image_size // p) ** 2
        self.pos = nn.Parameter(torch.randn(1, 1, n, d) * 0.02)
        self.time = nn.Parameter(torch.randn(1, cfg.frame_stack, 1, d) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, d)) if cfg.vit_pool == "cls" else None
        layer = nn.TransformerEncoderLayer(
            d, cfg.vit_heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.vit_depth, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d)
        self.proj = nn.Linear(d, cfg.latent_dim)
        self.norm = make_latent_norm(cfg)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_frames(frames, self.cfg)
        return encode_in_chunks(self._encode, frames)

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        k, h, w, c = frames.shape[-4:]
        x = to_float(frames.reshape(-1, h, w, c)).permute(0, 3, 1, 2)
        t = self.patch(x).flatten(2).transpose(1, 2)  # [B*k, n, d]
        t = t.reshape(-1, k, t.shape[1], t.shape[2]) + self.pos + self.time
        t = t.flatten(1, 2)
        if self.cls is not None:
            t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1)
        t = self.out_norm(self.blocks(t))
        pooled = t[:, 0] if self.cls is not None else t.mean(dim=1)
        return self.norm(self.proj(pooled))


def make_encoder(cfg: ModelConfig) -> nn.Module:
    if cfg.encoder == "conv_keypoints":
        return KeypointEncoder(cfg)
    return ConvEncoder(cfg) if cfg.encoder == "conv" else ViTEncoder(cfg)


def make_target(online: nn.Module) -> nn.Module:
    """A frozen copy of `online` for the EMA target (no gradients ever reach it)."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """θ̄ ← m·θ̄ + (1−m)·θ for parameters; buffers are copied. One fused call per module."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"ema_update: momentum={momentum!r} must be in [0, 1]")
    tp, op = list(target.parameters()), list(online.parameters())
    if len(tp) != len(op):
        raise ValueError("ema_update: target and online modules have different parameter lists")
    if tp:
        torch._foreach_lerp_(tp, op, 1.0 - momentum)
    for tb, ob in zip(target.buffers(), online.buffers()):
        tb.copy_(ob)


def cosine_momentum(step: int, total_steps: int, base: float, final: float) -> float:
    """Cosine schedule from `base` (step 0) to `final` (step ≥ total_steps), as in BYOL/I-JEPA."""
    if total_steps <= 0:
        return final
    s = min(max(step, 0), total_steps) / total_steps
    return final - (final - base) * (math.cos(math.pi * s) + 1.0) / 2.0
