"""`moejepa_ros.share`: the data files are found next to the code, through the ament index, or under the
code's install prefix, and a miss names every place tried."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from moejepa_ros import share
from training.config import resolve_config_path
from training.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import moejepa_ros.share as s; print(s.share_dir())"


def test_the_checkout_reads_its_own_config_and_recipes():
    assert share.share_dir() == ROOT
    assert Path(resolve_config_path("tiny")) == ROOT / "config" / "train" / "tiny.yaml"
    assert load_recipe("two_rooms_demo").steps


def _copied_code(prefix: Path) -> Path:
    """The package's code alone, laid out as an install prefix lays it out (no data files)."""
    site = prefix / "lib" / "python3" / "site-packages"
    shutil.copytree(ROOT / "moejepa_ros", site / "moejepa_ros", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def _share_dir(site: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, "PYTHONPATH": str(site), **env},
        cwd=site,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _data_files(share_dir: Path) -> None:
    (share_dir / "config").mkdir(parents=True)
    shutil.copy(ROOT / "package.xml", share_dir / "package.xml")


def test_an_install_prefix_reads_share_under_it(tmp_path):
    site = _copied_code(tmp_path)
    _data_files(tmp_path / "share" / "moejepa_ros")
    out = _share_dir(site)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == tmp_path / "share" / "moejepa_ros"


def test_the_ament_index_finds_another_prefix(tmp_path):
    site = _copied_code(tmp_path / "code")
    ros = tmp_path / "ros"
    _data_files(ros / "share" / "moejepa_ros")
    marker = ros / "share" / "ament_index" / "resource_index" / "packages" / "moejepa_ros"
    marker.parent.mkdir(parents=True)
    marker.touch()
    out = _share_dir(site, AMENT_PREFIX_PATH=str(ros))
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == ros / "share" / "moejepa_ros"


def test_a_miss_names_every_place_tried(tmp_path):
    site = _copied_code(tmp_path)
    out = _share_dir(site)
    assert out.returncode != 0
    assert "FileNotFoundError" in out.stderr and str(tmp_path / "share" / "moejepa_ros") in out.stderr
