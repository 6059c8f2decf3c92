"""`colcon build` of this checkout into a throw-away workspace, as a ROS user builds it (for the install-tree tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "moejepa_ros"


def colcon_build(ws: Path) -> Path:
    """Build and install the package into workspace `ws` (copied files, not symlinks); its install prefix.
    RuntimeError with colcon's output tail when the build fails."""
    out = subprocess.run(
        [sys.executable, "-m", "colcon", "build", "--paths", str(ROOT)],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"colcon build failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    return ws / "install" / PACKAGE
