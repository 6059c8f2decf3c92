"""What every launch file shares: the config folder, launch argument values, our nodes, the FastDDS profile.

Imports `launch` only inside functions, so this module (and its tests) load where the launch
packages are absent.
"""

from __future__ import annotations

import os

from moejepa_ros import share
from moejepa_ros.ros import dds


def config_dir() -> str:
    """The package's config/ folder (the source checkout's or the installed share/ one, see `share`)."""
    return str(share.share_path("config"))


def truthy(text: str) -> bool:
    """A launch argument's text as a bool ("true", "1", "yes", "on")."""
    return text.strip().lower() in ("1", "true", "yes", "on")


def fastdds_profile_action():
    """Point FASTDDS_DEFAULT_PROFILES_FILE at the large-image profile unless the user set one."""
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import EnvironmentVariable

    default = os.path.join(config_dir(), dds.PROFILE_NAME)
    return SetEnvironmentVariable(dds.ENV_VAR, EnvironmentVariable(dds.ENV_VAR, default_value=default))


def launch_values(context):
    """`get(name)`: the text of launch argument `name` in this launch context."""
    from launch.substitutions import LaunchConfiguration

    return lambda name: LaunchConfiguration(name).perform(context)


def moejepa_node(executable: str, get, parameters: list, remappings: list | None = None, namespace: str | None = None):
    """One of our nodes as every launch file starts it: named after its executable, `log_level` from the
    launch arguments, output on the screen."""
    from launch_ros.actions import Node

    where = {} if namespace is None else {"namespace": namespace}
    return Node(
        package="moejepa_ros",
        executable=executable,
        name=executable,
        **where,
        parameters=parameters,
        remappings=remappings or [],
        arguments=["--ros-args", "--log-level", get("log_level")],
        output="screen",
        emulate_tty=True,
    )
