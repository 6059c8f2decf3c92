"""The Two-Rooms demo's planner and objectives, read from `config/sim_demo.yaml`, the one place they are written.

Tests and benches that measure "the demo's planner, without X" start from these and override X. The plain
variants are the demo's CEM without its online correction and stall recovery, scoring the goal distance
alone: what the planning-cost and model benches measured before those existed.
"""

from typing import Any

import yaml

from moejepa_ros.share import share_path

CONFIG = share_path("config", "sim_demo.yaml")


def _planner_node() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())["planner_node"]["ros__parameters"]


def demo_planner(**overrides: Any) -> dict[str, Any]:
    """The demo's `planner.*` settings (the rest are PlannerConfig's defaults), then `overrides`."""
    return {**_planner_node()["planner"], **overrides}


def demo_objectives() -> dict[str, dict[str, Any]]:
    """The demo's `objectives.*` (missing options take the declared defaults in `build_objectives`)."""
    return {name: dict(spec) for name, spec in _planner_node()["objectives"].items()}


def plain_demo_planner(**overrides: Any) -> dict[str, Any]:
    """The demo's `planner.*` less its `correction_*` and `stall_*` settings (so both are off), then `overrides`."""
    plain = {k: v for k, v in demo_planner().items() if not k.startswith(("correction_", "stall_"))}
    return {**plain, **overrides}


def goal_only() -> dict[str, dict[str, Any]]:
    """The demo's goal objective alone (no smoothness term)."""
    return {"goal": demo_objectives()["goal"]}
