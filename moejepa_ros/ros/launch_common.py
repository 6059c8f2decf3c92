"""What every launch file shares: the config folder, launch argument values, our nodes, the FastDDS profile.

Imports `launch` only inside functions, so this module (and its tests) load where the launch
packages are absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

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


def read_params_file(path: Path) -> dict:
    """A ROS params file's top-level mapping, or a one-line ValueError naming the file."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the params file ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected `node_name: {{ros__parameters: ...}}` mappings at the top")
    return doc


def any_namespace(params_file: str | os.PathLike) -> str:
    """A params file whose plain node keys (`planner_node:`) apply in every namespace (`/**/planner_node:`).

    rcl matches a plain key as `/planner_node` only, so under `namespace:=robot1` such a file would
    silently set nothing. Keys that start with `/` (`/**:`, `/robot1/planner_node:`) are kept as written;
    the file itself is returned when it has no plain keys, else a rewritten copy in a temporary folder.
    """
    path = Path(params_file)
    doc = read_params_file(path)
    if all(str(k).startswith("/") for k in doc):
        return str(path)
    out = {(k if str(k).startswith("/") else f"/**/{k}"): v for k, v in doc.items()}
    fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}_", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(out, f, sort_keys=False)
    return tmp


def moejepa_node(
    executable: str,
    get,
    parameters: list,
    remappings: list | None = None,
    namespace: str | None = None,
    managed: bool = False,
):
    """One of our nodes as every launch file starts it: named after its executable, in `namespace`, params
    files made namespace-proof (`any_namespace`), `log_level` from the launch arguments, output on the screen.
    `managed`: a launch_ros `LifecycleNode` with the node's own `autostart` off, for `lifecycle_transitions`
    or a lifecycle manager to drive."""
    from launch_ros.actions import LifecycleNode, Node

    if managed:
        action, where, parameters = LifecycleNode, {"namespace": namespace or ""}, [*parameters, {"autostart": False}]
    else:
        action, where = Node, ({} if not namespace else {"namespace": namespace})
    return action(
        package="moejepa_ros",
        executable=executable,
        name=executable,
        **where,
        parameters=[any_namespace(p) if isinstance(p, (str, os.PathLike)) else p for p in parameters],
        remappings=remappings or [],
        arguments=["--ros-args", "--log-level", get("log_level")],
        output="screen",
        emulate_tty=True,
    )


def lifecycle_transitions(node, name: str = "planner_node") -> list:
    """The launch drives a managed (`LifecycleNode`) node to active: configure at once, activate when it
    reaches inactive; a failed configure ends the launch non-zero (as the node's own autostart exits 1)."""
    from launch.actions import EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition_id: int):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    activate_when_inactive = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[LogInfo(msg="configured: activating"), change(Transition.TRANSITION_ACTIVATE)],
        )
    )

    def configure_failed(context):
        raise RuntimeError(f"{name} failed to configure (its log says why): shutting the launch down")

    fail_when_unconfigured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="unconfigured",
            entities=[OpaqueFunction(function=configure_failed)],
        )
    )
    return [activate_when_inactive, fail_when_unconfigured, change(Transition.TRANSITION_CONFIGURE)]


def exit_reason(name: str, returncode: int | None) -> str:
    """The line a launch (and moejepa-bringup) logs when `name` exits: its status and what follows."""
    if returncode == 0:
        return f"{name} exited normally: shutting the launch down"
    return f"{name} failed (exit status {returncode}): shutting the launch down"


def end_launch_when_exits(action, name: str):
    """OnProcessExit → Shutdown: the launch never runs on without `name`. A non-zero exit raises in the
    handler, which the launch service logs with the reason and turns into a non-zero `ros2 launch` status.
    An exit while the launch is already shutting down is the launch stopping `name`: nothing to add (a
    second Shutdown would make launch_ros stop its ROS adapter twice and fail a clean run)."""
    from launch.actions import EmitEvent, LogInfo, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown

    def on_exit(event, context):
        if context.is_shutdown:
            return None
        reason = exit_reason(name, event.returncode)
        if event.returncode != 0:
            raise RuntimeError(reason)
        return [LogInfo(msg=reason), EmitEvent(event=Shutdown(reason=reason))]

    return RegisterEventHandler(OnProcessExit(target_action=action, on_exit=on_exit))


def require_ros2_bag() -> None:
    """RuntimeError in one line unless `ros2 bag` can run: a launch that plays a bag must fail at once
    without it (a missing executable never produces a process exit, so no exit handler would fire)."""
    import importlib.util
    import shutil

    if shutil.which("ros2") is None:
        raise RuntimeError("`ros2` is not on PATH: source a ROS 2 install (with rosbag2) to play a bag")
    if importlib.util.find_spec("ros2bag") is None:
        raise RuntimeError("`ros2 bag` is not installed (no ros2bag package): install rosbag2 to play a bag")
