"""The objective registry (name → class) and `build_objectives`, which validates against it.

Defining an `Objective` subclass with a `name` registers it. In-tree objectives are the modules of
this package (the package imports all of them: no list to edit); out-of-tree ones are modules that
`load_plugins` imports (planner_node's `objective_plugins`, like nav2's critic plugins).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .weighted import Objectives

if TYPE_CHECKING:
    from .base import Objective

REGISTRY: dict[str, type[Objective]] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_TYPES = (bool, int, float, str)


def register(cls: type[Objective]) -> type[Objective]:
    """Add `cls` under `cls.name` after checking its declarations; a different class may not take a name."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls.name, str) or not _NAME.match(cls.name):
        raise ValueError(f"objective name {cls.name!r} of {where} must match [a-z][a-z0-9_]*")
    old = REGISTRY.get(cls.name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"objective {cls.name!r} of {where} is already registered by {old.__module__}.{old.__qualname__}"
        )
    for key in ("enabled", "weight"):
        if key in cls.options:
            raise ValueError(f"objective {cls.name!r} of {where}: `{key}` is declared by {key}_default, not in options")
    for key, opt in cls.declared().items():
        if not _NAME.match(key):
            raise ValueError(f"objective {cls.name!r}: option name {key!r} must match [a-z][a-z0-9_]*")
        if type(opt.default) not in _TYPES:
            raise ValueError(
                f"objective {cls.name!r}: option {key!r} default {opt.default!r} must be a bool, int, float or str"
            )
        if not opt.help:
            raise ValueError(f"objective {cls.name!r}: option {key!r} has no help text")
        opt.check(cls.name, key, opt.default)  # the default obeys its own range / choices
    REGISTRY[cls.name] = cls
    return cls


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import each module (its objectives register themselves); the names it added, sorted."""
    before = set(REGISTRY)
    for module in modules:
        if not isinstance(module, str) or not module:
            raise ValueError(f"objective plugin {module!r} must be a Python module name")
        try:
            importlib.import_module(module)
        except Exception as e:  # an ImportError, or the plugin's own error while registering
            raise ValueError(f"objective plugin {module!r} failed to import: {type(e).__name__}: {e}") from None
    return sorted(set(REGISTRY) - before)


def default_spec() -> dict[str, dict[str, Any]]:
    """Every registered objective with its declared defaults (what `build_objectives(None)` builds)."""
    return {name: {k: o.default for k, o in cls.declared().items()} for name, cls in REGISTRY.items()}


def build_objectives(spec: Mapping[str, Any] | None = None) -> Objectives:
    """Objectives from `{name: {enabled, weight, ...options}}`; None -> `default_spec()`.

    An objective named in `spec` is on unless it says `enabled: false`; every other missing option
    takes its declared default. An unknown objective or option, or a value of the wrong type or
    outside its range, raises ValueError naming it.
    """
    spec = default_spec() if spec is None else spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"objectives must be a mapping name -> settings, got {type(spec).__name__}")
    items = []
    for name, params in spec.items():
        if name not in REGISTRY:
            raise ValueError(f"unknown objective {name!r}; known objectives: {sorted(REGISTRY)}")
        params = {} if params is None else params
        if not isinstance(params, Mapping):
            raise ValueError(f"objective {name!r}: settings must be a mapping, got {type(params).__name__}")
        items.append(REGISTRY[name](**{"enabled": True, **params}))
    return Objectives(items)
