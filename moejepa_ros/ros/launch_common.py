"""What every launch file shares: the config folder, truthy launch arguments, the FastDDS profile.

Imports `launch` only inside functions, so this module (and its tests) load where the launch
packages are absent.
"""
from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> str:
    """The package's config/ folder: the installed share/ one, else the source checkout's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory("moejepa_ros"), "config")
    except Exception:  # running from a source checkout (or no ament index)
        return str(Path(__file__).resolve().parents[2] / "config")


def truthy(text: str) -> bool:
    """A launch argument's text as a bool ("true", "1", "yes", "on")."""
    return text.strip().lower() in ("1", "true", "yes", "on")


def fastdds_profile_action():
    """Point FASTDDS_DEFAULT_PROFILES_FILE at the large-image profile unless the user set one."""
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import EnvironmentVariable

    default = os.path.join(config_dir(), "fastdds_large_images.xml")
    return SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", EnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE", default_value=default))
