"""Regenerate requirements.lock and requirements-ros.lock from the .txt files (pip's resolver report).

One lock serves every Python the package supports: ROS 2 Humble's 3.10, the dev venv's 3.11 and
Jazzy's 3.12. Each interpreter resolves the .txt itself (its own environment markers and wheels),
starting from the current lock's pins and letting go only of those it cannot install or that
conflict (so a re-lock changes only what must change; --upgrade starts from nothing). A package
whose version differs between Pythons gets one line per Python with a `python_version` marker.
Interpreters: `python3.10` etc. on PATH, or the PYTHON310 / PYTHON311 / PYTHON312 variables.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

PAIRS = [("requirements.txt", "requirements.lock"), ("requirements-ros.txt", "requirements-ros.lock")]
PYTHONS = ("3.10", "3.11", "3.12")
TORCH = "torch==2.13.0"  # the CPU build install.sh installs first; no dependency may pull another
LINE = re.compile(r'^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(?:;\s*python_version\s*==\s*"([\d.]+)")?\s*$')
# pip's reasons to let go of a pin: no distribution for this Python, or a conflict with a dependency
UNINSTALLABLE = re.compile(r"No matching distribution found for ([A-Za-z0-9_.-]+)")
CONFLICTING = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9_.-]+)==")
# torch's own GPU runtime: which of these come is the torch build's choice (install.sh installs torch first)
TORCH_BUILD = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def key(name: str) -> str:
    """A distribution name compared the way pip does (case, `_`, `.` and `-` alike)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def interpreter(version: str) -> str | None:
    """A working interpreter of `version` (X.Y), or None."""
    for exe in (os.environ.get("PYTHON" + version.replace(".", "")), f"python{version}"):
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.decode().strip() == version:
            return exe
    return None


def read_lock(path: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{python: {key: (name, version)}} from a lock file; unmarked lines hold for every Python."""
    pins: dict[str, dict[str, tuple[str, str]]] = {py: {} for py in PYTHONS}
    if not os.path.exists(path):
        return pins
    for raw in open(path):
        m = LINE.match(raw.strip())
        if m:
            name, version, py = m.groups()
            for p in [py] if py else PYTHONS:
                pins.setdefault(p, {})[key(name)] = (name, version)
    return pins


def resolve(python: str, src: str, constraints: list[str]) -> dict[str, tuple[str, str]]:
    """{key: (name, version)} pip resolves for `src` on `python` under `constraints`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report, tempfile.NamedTemporaryFile("w", suffix=".txt") as cons:
        cons.write("\n".join(constraints) + "\n")
        cons.flush()
        cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--report", report.name]
        out = subprocess.run(
            [*cmd, "-c", cons.name, "-r", src], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if out.returncode != 0:
            raise RuntimeError(out.stdout[-5000:])
        items = json.load(open(report.name))["install"]
    found = {key(i["metadata"]["name"]): (i["metadata"]["name"], i["metadata"]["version"].split("+")[0]) for i in items}
    return {k: v for k, v in found.items() if not TORCH_BUILD.match(k)}


def resolve_near(python: str, src: str, pins: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """`resolve` keeping every pin in `pins` that this Python can install without a conflict."""
    pins = {k: v for k, v in pins.items() if k != "torch"}
    while True:
        try:
            return resolve(python, src, [TORCH] + [f"{n}=={v}" for n, v in pins.values()])
        except RuntimeError as e:
            dropped = {key(n) for n in UNINSTALLABLE.findall(str(e)) + CONFLICTING.findall(str(e))} & set(pins)
            if not dropped:
                raise
            print(f"  {python}: letting go of {sorted(pins[k][0] + '==' + pins[k][1] for k in dropped)}")
            for k in dropped:
                del pins[k]


def merge(by_python: dict[str, dict[str, tuple[str, str]]]) -> list[str]:
    """Lock lines: `name==version` where every Python agrees, else one marked line per Python."""
    lines = []
    for k in sorted({k for r in by_python.values() for k in r}):
        versions = {py: r.get(k) for py, r in by_python.items()}
        if len({v[1] if v else None for v in versions.values()}) == 1:
            name, version = next(iter(versions.values()))
            lines.append(f"{name}=={version}")
        else:
            lines += [f'{v[0]}=={v[1]} ; python_version == "{py}"' for py, v in versions.items() if v]
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upgrade", action="store_true", help="resolve afresh instead of from the current pins")
    args = ap.parse_args()
    pythons = {py: interpreter(py) for py in PYTHONS}
    missing = [py for py, exe in pythons.items() if exe is None]
    if missing:
        sys.exit(f"lock: no interpreter for Python {', '.join(missing)} (put python3.X on PATH or set PYTHON3X)")
    for src, dst in PAIRS:
        current = {py: {} for py in PYTHONS} if args.upgrade else read_lock(dst)
        by_python = {py: resolve_near(exe, src, current[py]) for py, exe in pythons.items()}
        lines = merge(by_python)
        with open(dst, "w") as f:
            f.write(f"# Exact versions resolved from {src} for Python {', '.join(PYTHONS)} (regenerate: make lock).\n")
            f.write("\n".join(lines) + "\n")
        print(f"{dst}: {len(lines)} lines")
