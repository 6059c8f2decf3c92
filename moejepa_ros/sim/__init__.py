"""Simulators behind one gymnasium interface: two_rooms, two_rooms_pldm, mobile_base and dmc (MuJoCo),
isaac (optional).

Imports are lazy: ``import moejepa_ros.sim`` loads neither MuJoCo nor Isaac Sim.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "make_env": "registry",
    "known_envs": "registry",
    "data_policy": "registry",
    "MobileBaseEnv": "mobile_base",
    "RandomDrivePolicy": "mobile_base",
    "TwoRoomsEnv": "two_rooms",
    "RandomWalkPolicy": "two_rooms",
    "TwoRoomsPLDMEnv": "two_rooms_pldm",
    "DMCEnv": "dmc",
    "IsaacEnv": "isaac",
    "SimUnavailableError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
