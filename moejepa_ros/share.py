"""Where the package's data files (config/, config/train/, config/recipes/, launch/) are: the one lookup.

A source checkout (or editable install) reads them next to the code; an installed package reads
them from its share directory, `<prefix>/share/moejepa_ros` (setup.py's data_files): found
through the ament index when ROS 2 knows the package, else under the prefix the code itself
was installed into (a venv, `--user`, a colcon install space). No rclpy: the offline side uses it.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "moejepa_ros"
MARKER = "package.xml"  # in the source root and installed into share/<package> by setup.py


def _ament_share() -> Path | None:
    """The share directory the ament index knows for the package (None without ament or AMENT_PREFIX_PATH)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, OSError):  # not in the index / AMENT_PREFIX_PATH unset
        return None


def candidates() -> list[Path]:
    """The folders tried, in order: source checkout, ament index, the code's own install prefix."""
    code = Path(__file__).resolve().parent  # .../moejepa_ros
    found = [code.parent]  # the source checkout's root
    ament = _ament_share()
    if ament is not None:
        found.append(ament)
    if len(code.parents) > 3:  # <prefix>/lib/pythonX.Y/site-packages/moejepa_ros -> <prefix>/share/moejepa_ros
        found.append(code.parents[3] / "share" / PACKAGE)
    return found


def share_dir() -> Path:
    """The folder holding config/ and launch/; FileNotFoundError naming every place tried."""
    tried = candidates()
    for c in tried:
        if (c / MARKER).is_file() and (c / "config").is_dir():
            return c
    raise FileNotFoundError(f"{PACKAGE} data files (config/, launch/) not found in any of {[str(c) for c in tried]}")


def share_path(*parts: str) -> Path:
    """A path inside the data folder, e.g. `share_path("config", "train")`."""
    return share_dir().joinpath(*parts)
