"""The Two-Rooms demo's planner and objectives, read from `config/sim_demo.yaml`, the one place they are written.

Tests and benches that measure "the demo's planner, without X" start from these and override X.
"""

from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parents[1] / "config" / "sim_demo.yaml"


def _planner_node() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())["planner_node"]["ros__parameters"]


def demo_planner(**overrides: Any) -> dict[str, Any]:
    """The demo's `planner.*` settings (the rest are PlannerConfig's defaults), then `overrides`."""
    return {**_planner_node()["planner"], **overrides}


def demo_objectives() -> dict[str, dict[str, Any]]:
    """The demo's `objectives.*` (missing options take the declared defaults in `build_objectives`)."""
    return {name: dict(spec) for name, spec in _planner_node()["objectives"].items()}
