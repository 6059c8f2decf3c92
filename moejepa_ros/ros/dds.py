"""Where the shipped FastDDS profile lives, and pointing FASTDDS_DEFAULT_PROFILES_FILE at it.

Images above ~500 KB need a bigger FastDDS shared-memory segment than the default
(config/fastdds_large_images.xml, 16 MB). The variable is read when a DDS participant is
created, so it must be set before `rclpy.init` (bringup, launch files and the nodes' `main`
do so, never overriding a value the user already set).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from moejepa_ros import share

PROFILE_NAME = "fastdds_large_images.xml"
ENV_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"


def fastdds_profile_path() -> Path | None:
    """Absolute path of config/fastdds_large_images.xml, or None if it cannot be found."""
    try:
        p = share.share_path("config", PROFILE_NAME)
    except FileNotFoundError:
        return None
    return p if p.is_file() else None


def ensure_fastdds_profile(env: MutableMapping[str, str] | None = None) -> str | None:
    """Set FASTDDS_DEFAULT_PROFILES_FILE in `env` (default os.environ) unless already set.

    Returns the value now in effect (None when unset and the profile is not found). Only
    matters for the FastDDS RMW; harmless for others.
    """
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        return env[ENV_VAR]
    p = fastdds_profile_path()
    if p is None:
        return None
    env[ENV_VAR] = str(p)
    return env[ENV_VAR]


def init_rclpy(args: list[str] | None = None):
    """`rclpy.init` with the FastDDS profile set and SIGINT/SIGTERM handled by us, not rclpy.

    Returns the `threading.Event` the signals set, so a node's main loop can stop its own
    threads and publish its safe command before the context goes away.
    """
    import signal
    import threading

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    ensure_fastdds_profile()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
