"""The offline side imports with no ROS environment, never pulls rclpy in, and the package ships alone."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Trees that live only in the repo: the package must not reach them, by import or by `python -m` in a string.
REPO_ONLY = ("training", "examples", "testing", "bench")


def test_import_without_ros_environment():
    code = (
        "import sys, moejepa_ros, training, moejepa_ros.model, moejepa_ros.planning, "
        "moejepa_ros.codecs, moejepa_ros.sim, moejepa_ros.control, training.data, "
        "testing.ros_harness, testing.models, testing.demo_planner; "
        "assert 'rclpy' not in sys.modules, 'rclpy imported by the offline side'"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # no ROS_*, AMENT_*, LD_LIBRARY_PATH
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def _module_refs(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in `path` and every string that names a module."""
    refs = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            refs += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            refs.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"\w+(\.\w+)+", node.value):
                refs.append((node.lineno, node.value))
    return refs


def test_the_package_imports_nothing_that_lives_only_in_the_repo():
    files = sorted((ROOT / "moejepa_ros").rglob("*.py"))
    refs = {f: _module_refs(f) for f in files}
    assert sum(m.startswith("moejepa_ros.") for r in refs.values() for _, m in r) > 20  # the scan sees imports
    bad = [
        f"{f.relative_to(ROOT)}:{line} -> {m}" for f, r in refs.items() for line, m in r if m.split(".")[0] in REPO_ONLY
    ]
    assert not bad, "moejepa_ros reaches repo-only code:\n" + "\n".join(bad)
