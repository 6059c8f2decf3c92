"""Closed loop in simulation: sim_node + planner_node (config/sim_demo.yaml).

`ros2 launch moejepa_ros sim_demo.launch.py checkpoint:=runs/two_rooms/model.safetensors episodes:=10`
Each finished episode is one JSON line on /sim_node/episode_result; with episodes > 0 the
whole launch ends after the last one. use_sim_time:=true makes sim_node publish /clock and
the planner follow it. namespace:=robot1 puts both nodes (and their relative topics) under /robot1.
managed:=true starts the planner as a launch_ros LifecycleNode that the launch configures and activates.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from moejepa_ros.ros.launch_common import (
    config_dir,
    end_launch_when_exits,
    fastdds_profile_action,
    launch_values,
    lifecycle_transitions,
    moejepa_node,
    truthy,
)

CONFIG = config_dir()


def _nodes(context):
    get = launch_values(context)
    params_file = get("params_file")
    sim_time = truthy(get("use_sim_time"))
    planner_overrides = {"use_sim_time": sim_time}
    if get("checkpoint"):
        planner_overrides["checkpoint"] = get("checkpoint")
    sim_overrides = {"episodes": int(get("episodes")), "env": get("env"), "publish_clock": sim_time}
    ns = get("namespace")
    sim = moejepa_node("sim_node", get, [params_file, sim_overrides], namespace=ns)
    managed = truthy(get("managed"))
    planner = moejepa_node("planner_node", get, [params_file, planner_overrides], namespace=ns, managed=managed)
    # The run is over when the simulator has played its episodes, or when either node fails (the sim
    # never runs on alone): stop everything, non-zero when a node failed.
    return [
        sim,
        planner,
        end_launch_when_exits(sim, "sim_node"),
        end_launch_when_exits(planner, "planner_node"),
        *(lifecycle_transitions(planner) if managed else []),
    ]


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
            DeclareLaunchArgument("namespace", default_value="", description="namespace of both nodes"),
            DeclareLaunchArgument("env", default_value="two_rooms", description="moejepa_ros.sim env name"),
            DeclareLaunchArgument("episodes", default_value="0", description="0 = run until stopped"),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="sim_node publishes /clock and the planner follows it",
            ),
            DeclareLaunchArgument(
                "managed",
                default_value="false",
                description="true: start planner_node as a launch_ros LifecycleNode driven by lifecycle transitions",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="debug|info|warn|error"),
            fastdds_profile_action(),
            OpaqueFunction(function=_nodes),
        ]
    )
