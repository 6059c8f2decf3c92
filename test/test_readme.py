"""README stays true: the two commands, every declared node parameter, every launch file."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_two_commands_and_ci_use_them():
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_node_parameter_is_documented():
    params = pytest.importorskip("moejepa_ros.ros.params")
    missing = [s.name for s in (*params.PLANNER_NODE_SPECS, *params.SIM_NODE_SPECS) if f"`{s.name}`" not in README]
    assert not missing, f"README lacks parameters {missing}: run tools/params_table.py --write"


def test_every_launch_file_is_documented():
    missing = [p.name for p in (ROOT / "launch").glob("*.launch.py") if p.name not in README]
    assert not missing, f"README lacks launch files {missing}"
