"""Open-loop evaluation on a recorded bag: `ros2 bag play` + planner_node (sim time from the bag).

`ros2 launch moejepa_ros replay.launch.py bag:=/data/run1 checkpoint:=/path/model.safetensors`
The bag's camera topic (default /camera/image_raw) feeds the planner; the planner's commands go
to /planner/action (so they never mix with the recorded /action) and its plans to
/planner_node/plan (/<namespace>/planner_node/plan with namespace:=...). With record:=true a
second bag (output_bag) captures the recorded actions, the planner's actions, plans and
/diagnostics for offline comparison. The launch ends when playback ends.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction

from moejepa_ros.ros.launch_common import (
    config_dir,
    end_launch_when_exits,
    fastdds_profile_action,
    launch_values,
    moejepa_node,
    require_ros2_bag,
    truthy,
)

CONFIG = config_dir()


def _actions(context):
    get = launch_values(context)
    if not get("bag"):
        raise RuntimeError("replay.launch.py needs bag:=<path of a rosbag2 directory>")
    require_ros2_bag()
    overrides = {"use_sim_time": True, "camera_timeout": float(get("camera_timeout"))}
    if get("checkpoint"):
        overrides["checkpoint"] = get("checkpoint")
    remaps = [
        ("image", get("image_topic")),
        ("action", "/planner/action"),
        ("goal_image", get("goal_image_topic")),
        ("reward", get("reward_topic")),
    ]
    ns = get("namespace")
    planner = moejepa_node("planner_node", get, [get("params_file"), overrides], remaps, namespace=ns)
    # --clock: the bag's time drives /clock; the delay lets the planner finish loading first.
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", get("bag"), "--clock", "--rate", get("rate"), "--delay", get("start_delay")],
        output="screen",
    )
    actions = [planner, play]
    if truthy(get("record")):
        actions.append(
            ExecuteProcess(
                cmd=[
                    "ros2",
                    "bag",
                    "record",
                    "-o",
                    get("output_bag"),
                    "--use-sim-time",
                    get("action_topic"),
                    "/planner/action",
                    "/".join(["", *filter(None, ns.split("/")), "planner_node", "plan"]),
                    "/diagnostics",
                ],
                output="screen",
            )
        )
    actions += [end_launch_when_exits(play, "ros2 bag play"), end_launch_when_exits(planner, "planner_node")]
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("bag", default_value="", description="rosbag2 directory to play"),
            DeclareLaunchArgument("checkpoint", default_value="", description="world-model .safetensors"),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(CONFIG, "planner.yaml"),
                description="ROS params YAML with a planner_node entry",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="planner namespace"),
            DeclareLaunchArgument("image_topic", default_value="/camera/image_raw", description="bag camera topic"),
            DeclareLaunchArgument("action_topic", default_value="/action", description="bag's recorded commands"),
            DeclareLaunchArgument("goal_image_topic", default_value="/goal_image", description="goal image topic"),
            DeclareLaunchArgument("reward_topic", default_value="/reward", description="bag reward topic"),
            DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
            DeclareLaunchArgument("start_delay", default_value="3.0", description="seconds before playback"),
            DeclareLaunchArgument(
                "camera_timeout", default_value="2.0", description="planner camera timeout (bags can have gaps)"
            ),
            DeclareLaunchArgument("record", default_value="false", description="record the comparison bag"),
            DeclareLaunchArgument("output_bag", default_value="replay_eval", description="output bag directory"),
            DeclareLaunchArgument("log_level", default_value="info", description="debug|info|warn|error"),
            fastdds_profile_action(),
            OpaqueFunction(function=_actions),
        ]
    )
