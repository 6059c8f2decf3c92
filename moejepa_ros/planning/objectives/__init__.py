"""Named, composable planning objectives (nav2 MPPI critics are the model).

Each objective maps a batch of imagined rollouts to a **cost per sample** `[N]` (lower is
better); `Objectives` returns the weighted sum of the enabled ones. They are built from the
same nested dict the ROS parameters / YAML use:
`{"reward": {"enabled": true, "weight": 1.0, "terminal_value": false}, "goal": {...}, ...}`.

Adding an objective is one module in this package (it is imported below, no list to edit) or,
out of tree, a module named in planner_node's `objective_plugins`: define an `Objective`
subclass with `name`, `enabled_default`, `weight_default`, `options` and `__call__`.
"""

import importlib
import pkgutil

from .base import Objective, Option
from .registry import REGISTRY, build_objectives, default_spec, load_plugins
from .rollout import PoseGoal, Rollout
from .weighted import Objectives

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

DEFAULT_OBJECTIVES = default_spec()  # the in-tree objectives with their declared defaults

__all__ = [
    "DEFAULT_OBJECTIVES",
    "REGISTRY",
    "Objective",
    "Objectives",
    "Option",
    "PoseGoal",
    "Rollout",
    "build_objectives",
    "default_spec",
    "load_plugins",
]
