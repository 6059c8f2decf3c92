"""``make_env(name, **kw)``: one entry point for every simulator, importing each only when asked.

Names: ``two_rooms``; ``two_rooms_pldm`` (Two-Rooms on PLDM's DotWall rules); ``mobile_base`` (a camera
on a differential-drive base, MuJoCo);
``dmc:reacher`` (the reacher arm reaching a goal image, target hidden);
``dmc:<domain>_<task>`` (e.g. ``dmc:cartpole_swingup``, ``dmc:cup_catch``);
``isaac:<path to a .usd scene>``. Unknown names raise ``ValueError`` listing the known ones.
"""

from __future__ import annotations

from typing import Any

KNOWN = (
    "two_rooms",
    "two_rooms_pldm",
    "mobile_base",
    "dmc:reacher",
    "dmc:<domain>_<task>",
    "isaac:<path/to/scene.usd>",
)
# envs whose closed-loop evaluation runs in goal mode (a goal image per episode, success = reached)
GOAL_EVAL = ("two_rooms", "two_rooms_pldm", "dmc:reacher")
# envs with their own data-collection walk (`data_policy`): name -> (module, class or factory)
_WALKS = {
    "two_rooms": ("two_rooms", "RandomWalkPolicy"),
    "two_rooms_pldm": ("two_rooms_pldm", "random_walk"),
    "mobile_base": ("mobile_base", "RandomDrivePolicy"),
    "dmc:reacher": ("reacher", "RandomTorques"),
}


def make_env(name: str, **kwargs: Any):
    """Build the gymnasium env called ``name``; ``kwargs`` go to its constructor."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"make_env: name must be a non-empty string, got {name!r}; known: {', '.join(KNOWN)}")
    if name == "two_rooms":
        from .two_rooms import TwoRoomsEnv

        return TwoRoomsEnv(**kwargs)
    if name == "two_rooms_pldm":
        from .two_rooms_pldm import TwoRoomsPLDMEnv

        return TwoRoomsPLDMEnv(**kwargs)
    if name == "mobile_base":
        from .mobile_base import MobileBaseEnv

        return MobileBaseEnv(**kwargs)
    if name == "dmc:reacher":
        from .reacher import ReacherEnv

        return ReacherEnv(**kwargs)
    if name.startswith("dmc:"):
        from .dmc import DMCEnv

        return DMCEnv(name[len("dmc:") :], **kwargs)
    if name.startswith("isaac:"):
        path = name[len("isaac:") :]
        if not path:
            raise ValueError("make_env: 'isaac:' needs a USD scene path, e.g. 'isaac:/path/scene.usd'")
        from .isaac import IsaacEnv

        return IsaacEnv(path, **kwargs)
    raise ValueError(f"make_env: unknown simulator {name!r}; known: {', '.join(KNOWN)}")


def known_envs() -> tuple[str, ...]:
    """The name patterns ``make_env`` accepts."""
    return KNOWN


def data_policy(name: str, seed: int = 0, **kwargs: Any):
    """The env's own data-collection walk (Two-Rooms' random walk, the mobile base's random
    driving, the reacher's random torques) as a `policy(obs, info) -> action`; ValueError for envs that have none."""
    if name not in _WALKS:
        raise ValueError(f"no data walk for env {name!r}; envs with one: {sorted(_WALKS)} (else use policy 'random')")
    import importlib

    module, cls = _WALKS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)(seed=seed, **kwargs)
