"""`OnnxWorldModel`: a checkpoint's encoder and rollout step run by onnxruntime, for planning.

planner_node's read-only `backend` parameter picks it (`onnxruntime`) over the torch model. The
graphs are the ONNX files `moejepa-train export --format onnx` writes next to the checkpoint
(`moejepa_ros.model.onnx_graphs`). To a planner it is a `LatentModel`: `rollout` runs the step once
per horizon step for all samples, and the reward, value and cost the step computed on the way are
served when an objective asks for them on that rollout's latents. Everything else runs on the
wrapped torch model: the actor prior, the learned goal distance, other latents (the online
correction's), and gradient planning, which needs autograd.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor

from moejepa_ros.model.onnx_graphs import SOURCE_KEY, STEP_INPUTS, file_sha256, onnx_paths


def providers(device: str | torch.device) -> list:
    """The execution providers for `device`: CUDA (that card) first on a CUDA device when this onnxruntime
    has it, else the CPU one."""
    dev = torch.device(device)
    if dev.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": dev.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxWorldModel:
    """The `LatentModel` a planner plans with, its encoder and rollout step on onnxruntime."""

    def __init__(self, model: Any, checkpoint: str, device: str | torch.device = "cpu", threads: int = 1):
        self.model = model
        self.cfg = model.cfg
        self.latent_dim, self.action_dim = int(model.latent_dim), int(model.action_dim)
        # the pair pose net and motion model are not exported: the goal metric `pose` is refused (a stated gap)
        self.heads = tuple(h for h in model.heads if h != "relative_pose")
        self.device = torch.device(device)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sha = file_sha256(checkpoint)
        sessions = {}
        for name, path in onnx_paths(checkpoint).items():
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} not found: backend onnxruntime needs `moejepa-train export --format onnx` of {checkpoint}"
                )
            s = sessions[name] = ort.InferenceSession(path, opts, providers=providers(self.device))
            if s.get_modelmeta().custom_metadata_map.get(SOURCE_KEY) != sha:
                raise ValueError(f"{path} was exported from another checkpoint than {checkpoint}: export it again")
        self.encoder_session, self.step_session = sessions["encoder"], sessions["rollout_step"]
        self.providers = self.step_session.get_providers()
        self._last: tuple[Tensor, Tensor, dict[str, Tensor]] | None = None  # the last rollout and its heads

    # the routing probe of LatentController reads these from the torch model
    @property
    def predictor(self) -> Any:
        return self.model.predictor

    def routing_stats(self) -> dict[str, Tensor]:
        return self.model.routing_stats()

    def encode(self, frames: Tensor) -> Tensor:
        """uint8 frames [B, k, S, S, 3] → z [B, D] (on this model's device)."""
        (z,) = self.encoder_session.run(None, {"frames": _numpy(frames, np.uint8)})
        return torch.from_numpy(z).to(self.device)

    def rollout(self, z0: Tensor, actions: Tensor) -> Tensor:
        """z0[N or 1, D], actions[N, H, A] → latents [N, H, D]: the step session once per horizon step."""
        if torch.is_grad_enabled() and actions.requires_grad:  # gradient planners differentiate the torch model
            self._last = None
            return self.model.rollout(z0, actions)
        n, horizon, _ = actions.shape
        z = _numpy(z0.expand(n, -1), np.float32)
        a = _numpy(actions, np.float32)
        lat = np.empty((n, horizon, self.latent_dim), np.float32)
        heads = {k: np.empty((n, horizon), np.float32) for k in ("reward", "value", "cost")}
        for t in range(horizon):
            z, r, v, c = self.step_session.run(None, {STEP_INPUTS[0]: z, STEP_INPUTS[1]: np.ascontiguousarray(a[:, t])})
            lat[:, t], heads["reward"][:, t], heads["value"][:, t], heads["cost"][:, t] = z, r, v, c
        latents = torch.from_numpy(lat).to(self.device)
        self._last = (latents, actions, {k: torch.from_numpy(h).to(self.device) for k, h in heads.items()})
        return latents

    def _steps(self, z: Tensor) -> slice | int | None:
        """Which steps of the last rollout's latents `z` is (all of them, or the column z[:, t]), or None."""
        if self._last is None or z.device != self.device:
            return None
        lat = self._last[0]
        if z.untyped_storage().data_ptr() != lat.untyped_storage().data_ptr():
            return None
        if z.shape == lat.shape and z.stride() == lat.stride() and z.storage_offset() == lat.storage_offset():
            return slice(None)
        n, _, d = lat.shape
        offset = z.storage_offset() - lat.storage_offset()
        if z.shape == (n, d) and z.stride() == (lat.stride(0), 1) and offset % d == 0:
            return offset // d
        return None

    def reward(self, z: Tensor, a: Tensor) -> Tensor:
        """r(z_t, a_t): the step's own rewards when (z, a) are the last rollout's states before and actions."""
        last = self._last
        if (
            last is not None
            and a is last[1]
            and z.shape[:-1] == a.shape[:-1]
            and torch.equal(z[:, 1:], last[0][:, :-1])
        ):
            return last[2]["reward"]
        return self.model.reward(z, a)

    def value(self, z: Tensor) -> Tensor:
        steps = self._steps(z)
        return self.model.value(z) if steps is None else self._last[2]["value"][:, steps]

    def cost(self, z: Tensor) -> Tensor:
        steps = self._steps(z)
        return self.model.cost(z) if steps is None else self._last[2]["cost"][:, steps]

    def actor(self, z: Tensor) -> Tensor:
        return self.model.actor(z)

    def q(self, z: Tensor, a: Tensor) -> Tensor:
        return self.model.q(z, a)

    def goal_distance(self, z: Tensor, g: Tensor) -> Tensor:
        return self.model.goal_distance(z, g)


def _numpy(t: Tensor, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)
