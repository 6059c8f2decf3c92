"""planner_node driving a robot in NVIDIA Isaac Sim through the Isaac Sim ROS 2 bridge.

`ros2 launch moejepa_ros isaac_sim.launch.py checkpoint:=/path/model.safetensors`
The bridge's camera helper publishes the RGB camera (default topic /rgb) and its
differential-controller graph subscribes /cmd_vel (geometry_msgs/Twist); a
"ROS2 Publish Clock" node publishes /clock, so sim time is on. Remap with camera_topic /
cmd_vel_topic / goal_image_topic when the scene's action graph uses other names.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node


def _config_dir():
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory("moejepa_ros"), "config")
    except Exception:  # running from a source checkout
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


CONFIG = _config_dir()


def _truthy(text):
    return text.strip().lower() in ("1", "true", "yes", "on")


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides = {"use_sim_time": _truthy(get("use_sim_time"))}
    if get("checkpoint"):
        overrides["checkpoint"] = get("checkpoint")
    return [Node(
        package="moejepa_ros",
        executable="planner_node",
        name="planner_node",
        namespace=get("namespace"),
        parameters=[get("params_file"), overrides],
        remappings=[("image", get("camera_topic")), ("action", get("cmd_vel_topic")),
                    ("goal_image", get("goal_image_topic"))],
        arguments=["--ros-args", "--log-level", get("log_level")],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(CONFIG, "isaac_sim.yaml"),
                              description="ROS params YAML with a planner_node entry"),
        DeclareLaunchArgument("checkpoint", default_value="", description="world-model .safetensors"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("camera_topic", default_value="/rgb", description="Isaac camera helper topic"),
        DeclareLaunchArgument("cmd_vel_topic", default_value="/cmd_vel", description="Isaac Twist command topic"),
        DeclareLaunchArgument("goal_image_topic", default_value="/goal_image", description="goal image topic"),
        DeclareLaunchArgument("use_sim_time", default_value="true", description="follow Isaac's /clock"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug|info|warn|error"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", EnvironmentVariable(
            "FASTDDS_DEFAULT_PROFILES_FILE", default_value=os.path.join(CONFIG, "fastdds_large_images.xml"))),
        OpaqueFunction(function=_nodes),
    ])
