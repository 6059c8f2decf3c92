"""tools/lock.py: one lock for several Pythons (a marked line only where versions differ), and the lock
files on disk pin every package once per supported Python."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lock", ROOT / "tools" / "lock.py")
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)


def test_merge_marks_only_what_differs_and_reads_back(tmp_path):
    by_python = {
        "3.10": {"numpy": ("numpy", "2.2.6"), "tomli": ("tomli", "2.3.0"), "six": ("six", "1.17.0")},
        "3.11": {"numpy": ("numpy", "2.4.6"), "six": ("six", "1.17.0")},
        "3.12": {"numpy": ("numpy", "2.4.6"), "six": ("six", "1.17.0")},
    }
    lines = lock.merge(by_python)
    assert "six==1.17.0" in lines
    assert 'numpy==2.2.6 ; python_version == "3.10"' in lines and 'numpy==2.4.6 ; python_version == "3.11"' in lines
    assert [x for x in lines if x.startswith("tomli")] == ['tomli==2.3.0 ; python_version == "3.10"']
    path = tmp_path / "x.lock"
    path.write_text("# header\n" + "\n".join(lines) + "\n")
    assert lock.read_lock(str(path)) == by_python


def test_the_locks_pin_each_package_once_per_python():
    for _, dst in lock.PAIRS:
        pins = lock.read_lock(str(ROOT / dst))
        lines = [x for x in (ROOT / dst).read_text().splitlines() if x and not x.startswith("#")]
        assert all(lock.LINE.match(x) for x in lines), dst
        for py in lock.PYTHONS:
            assert "torch" in pins[py] or dst == "requirements-ros.lock", (dst, py)
            per_python = [x for x in lines if not x.split(";")[1:] or f'"{py}"' in x]
            assert len(per_python) == len(pins[py]), (dst, py)  # no package twice for one Python
