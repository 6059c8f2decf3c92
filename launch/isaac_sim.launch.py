"""planner_node driving a robot in NVIDIA Isaac Sim through the Isaac Sim ROS 2 bridge.

`ros2 launch moejepa_ros isaac_sim.launch.py checkpoint:=/path/model.safetensors`
The bridge's camera helper publishes the RGB camera (default topic /rgb) and its
differential-controller graph subscribes /cmd_vel (geometry_msgs/Twist); a
"ROS2 Publish Clock" node publishes /clock, so sim time is on. Remap with camera_topic /
cmd_vel_topic / goal_image_topic when the scene's action graph uses other names. managed:=true
starts the planner as a launch_ros LifecycleNode that the launch configures and activates.
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
    overrides = {"use_sim_time": truthy(get("use_sim_time"))}
    if get("checkpoint"):
        overrides["checkpoint"] = get("checkpoint")
    remaps = [("image", get("camera_topic")), ("action", get("cmd_vel_topic")), ("goal_image", get("goal_image_topic"))]
    managed, ns = truthy(get("managed")), get("namespace")
    planner = moejepa_node("planner_node", get, [get("params_file"), overrides], remaps, namespace=ns, managed=managed)
    return [
        planner,
        end_launch_when_exits(planner, "planner_node"),
        *(lifecycle_transitions(planner) if managed else []),
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(CONFIG, "isaac_sim.yaml"),
                description="ROS params YAML with a planner_node entry",
            ),
            DeclareLaunchArgument("checkpoint", default_value="", description="world-model .safetensors"),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument("camera_topic", default_value="/rgb", description="Isaac camera helper topic"),
            DeclareLaunchArgument("cmd_vel_topic", default_value="/cmd_vel", description="Isaac Twist command topic"),
            DeclareLaunchArgument("goal_image_topic", default_value="/goal_image", description="goal image topic"),
            DeclareLaunchArgument("use_sim_time", default_value="true", description="follow Isaac's /clock"),
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
