"""``make_env(name, **kw)``: one entry point for every simulator, importing each only when asked.

Names: ``two_rooms``; ``dmc:<domain>_<task>`` (e.g. ``dmc:cartpole_swingup``, ``dmc:cup_catch``);
``isaac:<path to a .usd scene>``. Unknown names raise ``ValueError`` listing the known ones.
"""

from __future__ import annotations

from typing import Any

KNOWN = ("two_rooms", "dmc:<domain>_<task>", "isaac:<path/to/scene.usd>")


def make_env(name: str, **kwargs: Any):
    """Build the gymnasium env called ``name``; ``kwargs`` go to its constructor."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"make_env: name must be a non-empty string, got {name!r}; known: {', '.join(KNOWN)}")
    if name == "two_rooms":
        from .two_rooms import TwoRoomsEnv

        return TwoRoomsEnv(**kwargs)
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
