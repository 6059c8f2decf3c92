"""The demo's planner as the benches measure it, from `testing.demo_planner` (config/sim_demo.yaml).

Benches of planning cost and of the model measure the demo's CEM without its online correction and
stall recovery, scoring the learned goal distance alone: what they measured before those existed.
"""

from typing import Any

from testing.demo_planner import demo_objectives, demo_planner


def plain_demo_planner(**overrides: Any) -> dict[str, Any]:
    """The demo's `planner.*` less its `correction_*` and `stall_*` settings (so both are off), then `overrides`."""
    plain = {k: v for k, v in demo_planner().items() if not k.startswith(("correction_", "stall_"))}
    return {**plain, **overrides}


def goal_only() -> dict[str, dict[str, Any]]:
    """The demo's goal objective alone (no smoothness term)."""
    return {"goal": demo_objectives()["goal"]}
