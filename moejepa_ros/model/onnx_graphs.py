"""The world model's planning parts as plain graphs for ONNX export, and where their files live.

`EncoderGraph`: uint8 frames [B, k, S, S, 3] → z [B, D]. `RolloutStep`: one horizon step for N
samples, z[N, D], a[N, A] → z'[N, D] with the heads the planner scores it by: reward r(z, a),
value V(z'), cost C(z') ([N] each). Its predictor runs the `TRACE_IMPL` expert evaluation: every
expert in one wide matmul with the unchosen gates zero, so there is no `grouped_mm`, no reused
buffer and no data-dependent branch for `torch.export` to trip on; it is the same maths as the
planning fast path (`Predictor._rollout_sorted`), which test/test_export.py checks.
"""

from __future__ import annotations

import hashlib
import os

import torch
from torch import nn

ENCODER_INPUTS, ENCODER_OUTPUTS = ("frames",), ("z",)
STEP_INPUTS, STEP_OUTPUTS = ("z", "action"), ("z_next", "reward", "value", "cost")
TRACE_IMPL = "masked"
GRAPHS = ("encoder", "rollout_step")
#: ONNX metadata key holding the sha256 of the safetensors file the graphs were exported from.
SOURCE_KEY = "moejepa_checkpoint_sha256"


def onnx_paths(checkpoint: str) -> dict[str, str]:
    """The ONNX files of a checkpoint, next to it: model.safetensors → model.encoder.onnx, model.rollout_step.onnx."""
    stem = os.path.splitext(checkpoint)[0]
    return {g: f"{stem}.{g}.onnx" for g in GRAPHS}


class EncoderGraph(nn.Module):
    """The online encoder alone: uint8 frame stacks [B, k, S, S, 3] → latents [B, D]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(frames)


class RolloutStep(nn.Module):
    """One planning step for N samples: (z, a) → (z', r(z, a), V(z'), C(z')); iterated H times it
    is `Predictor.rollout` with the reward, value and cost heads on the way."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.predictor = model.predictor
        self.reward_head, self.value_head, self.cost_head = model.reward_head, model.value_head, model.cost_head

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p = self.predictor
        z_next, _ = p.step(z, p.embed(action), need_aux=False, impl=TRACE_IMPL)
        return z_next, self.reward_head(z, action), self.value_head(z_next), self.cost_head(z_next)


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """sha256 of a file (the checkpoint the graphs came from), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()
