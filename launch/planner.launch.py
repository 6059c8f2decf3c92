"""planner_node on a robot: `ros2 launch moejepa_ros planner.launch.py checkpoint:=/path/model.safetensors`.

Arguments: params_file (default config/planner.yaml), checkpoint (overrides the YAML when
non-empty), namespace, use_sim_time, log_level, image_topic / action_topic / goal_image_topic
(remaps of the node's relative topics), autostart (false: drive it with a lifecycle manager),
managed (true: a launch_ros LifecycleNode; with autostart the launch itself emits configure,
then activate once inactive, else it stays unconfigured for a lifecycle manager).
FASTDDS_DEFAULT_PROFILES_FILE is pointed at config/fastdds_large_images.xml unless already set.
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
    managed, autostart = truthy(get("managed")), truthy(get("autostart"))
    overrides = {"use_sim_time": truthy(get("use_sim_time")), "autostart": autostart}
    if get("checkpoint"):
        overrides["checkpoint"] = get("checkpoint")
    remaps = [
        ("image", get("image_topic")),
        ("image/compressed", get("image_topic") + "/compressed"),
        ("action", get("action_topic")),
        ("goal_image", get("goal_image_topic")),
    ]
    ns = get("namespace")
    planner = moejepa_node("planner_node", get, [get("params_file"), overrides], remaps, namespace=ns, managed=managed)
    return [
        planner,
        end_launch_when_exits(planner, "planner_node"),
        *(lifecycle_transitions(planner) if managed and autostart else []),
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(CONFIG, "planner.yaml"),
                description="ROS params YAML with a planner_node entry",
            ),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="world-model .safetensors (empty: the YAML's)"
            ),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock"),
            DeclareLaunchArgument(
                "autostart", default_value="true", description="configure+activate on start (false: lifecycle manager)"
            ),
            DeclareLaunchArgument(
                "managed",
                default_value="false",
                description="true: start planner_node as a launch_ros LifecycleNode driven by lifecycle transitions",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="debug|info|warn|error"),
            DeclareLaunchArgument("image_topic", default_value="image", description="camera topic"),
            DeclareLaunchArgument("action_topic", default_value="action", description="command topic"),
            DeclareLaunchArgument("goal_image_topic", default_value="goal_image", description="goal image topic"),
            fastdds_profile_action(),
            OpaqueFunction(function=_nodes),
        ]
    )
