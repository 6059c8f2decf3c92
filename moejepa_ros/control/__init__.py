"""The one Mode-2 control step, without rclpy: frame stack, preprocess, encode → plan → clamp → safe zero.

planner_node, MBRL collection, distillation, evaluation and the benches all run it: `LatentController`
is the step, `FrameStack` its input, `preprocess` the resize shared with the training cache, and
`PlannerPolicy` the adapter for gymnasium-style episode loops. The torch-backed names load on first
use, so the cache's decode workers (`preprocess` only) never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .frame_stack import FrameStack, Snapshot
from .preprocess import preprocess

_LAZY = {
    "ERROR": "controller",
    "OK": "controller",
    "WARN": "controller",
    "Decision": "controller",
    "LatentController": "controller",
    "PlannerPolicy": "policy",
}

__all__ = [
    "ERROR",
    "OK",
    "WARN",
    "Decision",
    "FrameStack",
    "LatentController",
    "PlannerPolicy",
    "Snapshot",
    "preprocess",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
