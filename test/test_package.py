"""The offline side imports with no ROS environment, and never pulls rclpy in."""
import subprocess
import sys


def test_import_without_ros_environment():
    code = ("import sys, moejepa_ros, training, moejepa_ros.model, moejepa_ros.planning, "
            "moejepa_ros.codecs, moejepa_ros.sim, moejepa_ros.control, training.data; "
            "assert 'rclpy' not in sys.modules, 'rclpy imported by the offline side'")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # no ROS_*, AMENT_*, LD_LIBRARY_PATH
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
