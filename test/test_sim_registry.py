"""Registry: lazy imports, name parsing, clear errors; Isaac raises one clear SimUnavailableError."""

import subprocess
import sys

import pytest

from moejepa_ros.sim import SimUnavailableError, isaac, make_env


def test_import_sim_does_not_import_mujoco():
    code = (
        "import sys, moejepa_ros.sim as s; s.make_env('two_rooms'); "
        "assert 'mujoco' not in sys.modules and 'dm_control' not in sys.modules, 'eager import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_two_rooms_by_name_with_kwargs():
    env = make_env("two_rooms", mode="data", wall_x=30, door_y=25)
    _, info = env.reset(seed=0)
    assert (info["wall_x"], info["door_y"]) == (30, 25)


@pytest.mark.parametrize("name", ["", "tworooms", "mujoco:cartpole", "dmc", "isaac:"])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(ValueError) as e:
        make_env(name)
    msg = str(e.value)
    if name != "isaac:":
        assert "two_rooms" in msg and "dmc:" in msg and "isaac:" in msg


def test_isaac_raises_one_clear_error(tmp_path, monkeypatch):
    usd = tmp_path / "scene.usd"
    usd.write_text("#usda 1.0\n")
    if not isaac.missing_requirements():
        pytest.skip("Isaac Sim is available here")
    with pytest.raises(SimUnavailableError) as e:
        make_env(f"isaac:{usd}")
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert "isaacsim" in msg and "pip install" in msg


def test_isaac_error_names_gpu_problem(monkeypatch):
    monkeypatch.setattr(isaac, "_gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])
    monkeypatch.setattr(isaac.importlib.util, "find_spec", lambda name: object())
    missing = isaac.missing_requirements()
    assert len(missing) == 1 and "RT cores" in missing[0]
    monkeypatch.setattr(isaac, "_gpu_names", lambda: [])
    with pytest.raises(SimUnavailableError, match="no NVIDIA GPU"):
        isaac.check_available()
    monkeypatch.setattr(isaac, "_gpu_names", lambda: ["NVIDIA L40S"])
    assert isaac.missing_requirements() == []
