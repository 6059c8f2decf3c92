"""The package as a ROS user installs it: `colcon build` into a temporary workspace, then the installed
executables run from the sourced install tree, with the install's own code and data files (not the checkout's)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("colcon_core", reason="colcon is not installed (requirements.txt has it: `make install`)")

from testing.colcon import colcon_build


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A colcon workspace with the package built and installed (copied files, not symlinks)."""
    ws = tmp_path_factory.mktemp("colcon_ws")
    colcon_build(ws)
    return ws


def sourced(ws: Path, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`command` in bash after `. install/setup.sh`, with no PYTHONPATH of ours (the checkout stays out)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        ["bash", "-c", f". install/setup.sh && {command}"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_install_tree_has_the_executables_and_data_files(workspace):
    prefix = workspace / "install" / "moejepa_ros"
    for exe in ("planner_node", "sim_node", "moejepa-bringup", "moejepa-train"):
        assert os.access(prefix / "lib" / "moejepa_ros" / exe, os.X_OK), exe  # where `ros2 run` looks
    share = prefix / "share" / "moejepa_ros"
    for f in ("package.xml", "launch/planner.launch.py", "config/planner.yaml", "config/train/tiny.yaml"):
        assert (share / f).is_file(), f
    assert (share / "config" / "recipes" / "two_rooms_demo.yaml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "moejepa_ros").is_file()


def test_installed_code_finds_its_installed_data_files(workspace):
    code = "import moejepa_ros, moejepa_ros.share as s; print(moejepa_ros.__file__); print(s.share_dir())"
    out = sourced(workspace, f"{sys.executable} -c '{code}'")
    assert out.returncode == 0, out.stderr[-3000:]
    module, share = out.stdout.split()
    prefix = workspace / "install" / "moejepa_ros"
    assert Path(module).is_relative_to(prefix), module
    assert Path(share) == prefix / "share" / "moejepa_ros"


@pytest.mark.parametrize("exe, parameter", [("planner_node", "checkpoint"), ("sim_node", "lockstep")])
def test_installed_node_prints_usage_and_exits(workspace, exe, parameter):
    out = sourced(workspace, f"install/moejepa_ros/lib/moejepa_ros/{exe} --help")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith(f"usage: ros2 run moejepa_ros {exe}")
    assert f"\n  {parameter} (" in out.stdout  # the parameter list


def test_installed_moejepa_train_runs_a_bare_config_name(workspace, tmp_path):
    exe = "install/moejepa_ros/lib/moejepa_ros/moejepa-train"
    out = sourced(workspace, f"{exe} --help")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "collect" in out.stdout and "fit" in out.stdout
    # `-c tiny` is found in the install's share/ (the checkout is not on the path)
    run = tmp_path / "run"
    out = sourced(workspace, f"{exe} collect -c tiny collect.episodes=1 collect.max_steps=6 run.out_dir={run}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert any((run / "collect" / "bags").iterdir())
