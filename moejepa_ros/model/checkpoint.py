"""Checkpoints: one `.safetensors` file (all weights incl. the EMA target) + JSON header metadata.

Never pickles. Header metadata keys (all JSON strings): format_version, model_config,
action_low, action_high, preprocessing, training. Written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .world_model import WorldModel

FORMAT_VERSION = 1
META_KEYS = ("format_version", "model_config", "action_low", "action_high", "preprocessing", "training")


class CheckpointError(ValueError):
    """Any problem reading or writing a checkpoint; the message names the path and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"checkpoint {self.path}: {problem}")


def _bounds(name: str, value: Any, action_dim: int, path) -> list[float] | None:
    if value is None:
        return None
    try:
        vals = [float(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    except (TypeError, ValueError) as exc:
        raise CheckpointError(path, f"{name}={value!r} is not a list of numbers ({exc})") from None
    if len(vals) != action_dim or not all(math.isfinite(v) for v in vals):
        raise CheckpointError(path, f"{name}={vals} must be {action_dim} finite numbers (action_dim)")
    return vals


def save_checkpoint(path: str | os.PathLike, model: WorldModel, meta: dict | None = None) -> Path:
    """Write weights + metadata to `path` atomically; meta may hold action_low/high, preprocessing, training."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = dict(meta or {})
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise CheckpointError(path, f"unknown meta key(s) {unknown}; known: {list(META_KEYS[2:])}")
    A = model.action_dim
    header = {
        "format_version": json.dumps(FORMAT_VERSION),
        "model_config": json.dumps(model.cfg.to_dict()),
        "action_low": json.dumps(_bounds("action_low", meta.get("action_low"), A, path)),
        "action_high": json.dumps(_bounds("action_high", meta.get("action_high"), A, path)),
        "preprocessing": json.dumps(meta.get("preprocessing") or model.preprocessing),
        "training": json.dumps(meta.get("training") or {}),
    }
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_derived(path: str | os.PathLike, model: WorldModel, parent_meta: dict, training: dict) -> Path:
    """Save a model made from another checkpoint (refine, goal, MBRL, distill): the parent's action bounds
    and preprocessing carry over; `training` is the new record of how it was made."""
    keep = {k: parent_meta.get(k) for k in ("action_low", "action_high", "preprocessing")}
    return save_checkpoint(path, model, {**keep, "training": training})


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check the JSON header metadata only (cheap: weights are not read)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata()
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(path, f"not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    if not raw:
        raise CheckpointError(path, "no header metadata (not written by save_checkpoint)")
    missing = [k for k in META_KEYS if k not in raw]
    if missing:
        raise CheckpointError(path, f"header metadata is missing {missing}")
    meta: dict[str, Any] = {}
    for k in META_KEYS:
        try:
            meta[k] = json.loads(raw[k])
        except (json.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(path, f"metadata {k!r} is not valid JSON ({exc})") from None
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            path, f"unknown format_version {meta['format_version']!r} (this code reads {FORMAT_VERSION})"
        )
    try:
        cfg = ModelConfig.from_dict(meta["model_config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(path, f"bad model_config: {exc}") from None
    A = cfg.action_dim
    for k in ("action_low", "action_high"):
        meta[k] = _bounds(k, meta[k], A, path)
    return meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[WorldModel, dict]:
    """Rebuild the model from the header JSON alone and load its weights; returns (model, meta).

    `meta` holds the parsed JSON (model_config as a dict; `model.cfg` is the dataclass);
    the model is returned in eval mode.
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_meta(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(
            path, f"cannot read tensors, file truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from None
    model = WorldModel(ModelConfig.from_dict(meta["model_config"]))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            path, f"tensor names do not match the model_config: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape) or tensors[k].dtype != v.dtype:
            raise CheckpointError(
                path,
                f"tensor {k!r} has shape {tuple(tensors[k].shape)} {tensors[k].dtype}, "
                f"model expects {tuple(v.shape)} {v.dtype}",
            )
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), meta
