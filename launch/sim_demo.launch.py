"""Closed loop in simulation: sim_node + planner_node (config/sim_demo.yaml).

`ros2 launch moejepa_ros sim_demo.launch.py checkpoint:=runs/two_rooms/model.safetensors episodes:=10`
Each finished episode is one JSON line on /sim_node/episode_result; with episodes > 0 the
whole launch ends after the last one. use_sim_time:=true makes sim_node publish /clock and
the planner follow it.
"""

import os

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from moejepa_ros.ros.launch_common import config_dir, fastdds_profile_action, truthy

CONFIG = config_dir()


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    params_file = get("params_file")
    sim_time = truthy(get("use_sim_time"))
    planner_overrides = {"use_sim_time": sim_time}
    if get("checkpoint"):
        planner_overrides["checkpoint"] = get("checkpoint")
    log = ["--ros-args", "--log-level", get("log_level")]
    sim = Node(
        package="moejepa_ros",
        executable="sim_node",
        name="sim_node",
        parameters=[params_file, {"episodes": int(get("episodes")), "env": get("env"), "publish_clock": sim_time}],
        arguments=log,
        output="screen",
        emulate_tty=True,
    )
    planner = Node(
        package="moejepa_ros",
        executable="planner_node",
        name="planner_node",
        parameters=[params_file, planner_overrides],
        arguments=log,
        output="screen",
        emulate_tty=True,
    )
    # The run is over when the simulator has played its episodes (or dies): stop everything.
    stop_all = RegisterEventHandler(
        OnProcessExit(target_action=sim, on_exit=[EmitEvent(event=Shutdown(reason="sim_node finished"))])
    )
    return [sim, planner, stop_all]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(CONFIG, "sim_demo.yaml"),
                description="ROS params YAML with sim_node and planner_node entries",
            ),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="world-model .safetensors (empty: the YAML's)"
            ),
            DeclareLaunchArgument("env", default_value="two_rooms", description="moejepa_ros.sim env name"),
            DeclareLaunchArgument("episodes", default_value="0", description="0 = run until stopped"),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="sim_node publishes /clock and the planner follows it",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="debug|info|warn|error"),
            fastdds_profile_action(),
            OpaqueFunction(function=_nodes),
        ]
    )
