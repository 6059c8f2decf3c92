"""The bench package and its record: every module imports, every kept result carries the schema and is
cited from BENCHMARKS.md, and a bench run writes to out/ unless asked to update the record."""

import argparse
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bench.experiments
import bench.micro
from bench import record

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = (ROOT / "BENCHMARKS.md").read_text()
MODULES = [
    f"{pkg.__name__}.{m.name}" for pkg in (bench.micro, bench.experiments) for m in pkgutil.iter_modules(pkg.__path__)
]
RESULTS = sorted((ROOT / "bench" / "results").glob("*.json"))


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(name):
    assert callable(importlib.import_module(name).main)


def test_the_record_is_one_schema_and_cited():
    assert RESULTS
    for path in RESULTS:
        doc = json.loads(path.read_text())
        missing = [k for k in record.SCHEMA_KEYS if k not in doc]
        assert not missing, f"{path.name} lacks {missing}"
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", doc["git_sha"]), (path.name, doc["git_sha"])
        assert doc["command"].startswith("python "), (path.name, doc["command"])
        assert f"bench/results/{path.name}" in BENCHMARKS, f"{path.name} is not cited in BENCHMARKS.md"


def test_benchmarks_md_cites_only_what_exists():
    cited = set(re.findall(r"(?<!:)bench/results/([\w.-]+\.json)", BENCHMARKS))  # not `git show SHA:bench/...`
    assert cited <= {p.name for p in RESULTS}, cited - {p.name for p in RESULTS}
    for image in re.findall(r"\]\((docs/[\w.-]+)\)", BENCHMARKS):
        assert (ROOT / image).is_file(), image


def test_record_paths_follow_the_flags():
    ap = argparse.ArgumentParser()
    record.add_arguments(ap, "codecs")
    plain, kept, named = ap.parse_args([]), ap.parse_args(["--record"]), ap.parse_args(["--name", "codecs_x"])
    assert record.json_path(plain) == Path("out/bench/codecs.json")
    assert record.figure_path(plain) == Path("out/bench/codecs.png")
    assert record.json_path(kept) == ROOT / "bench" / "results" / "codecs.json"
    assert record.figure_path(kept) == ROOT / "docs" / "codecs.png"
    assert record.json_path(named) == Path("out/bench/codecs_x.json")


def test_a_bench_run_writes_to_out_in_the_schema(tmp_path):
    """The cheapest bench (codecs, a few calls per case) run from another directory writes its
    out/bench/ there and leaves the record alone."""
    kept = (ROOT / "bench" / "results" / "codecs.json").read_bytes()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "bench.micro.bench_codecs", "--seconds", "0.001", "--rounds", "1"]
    p = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "out" / "bench" / "codecs.json").read_text())
    assert set(record.SCHEMA_KEYS) <= set(doc)
    assert doc["command"] == "python -m bench.micro.bench_codecs --seconds 0.001 --rounds 1"
    assert {"cpu", "cores", "torch", "torch_threads", "os", "gpu"} <= set(doc["machine"])
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", doc["git_sha"])
    rows = doc["figures"]["results"]
    assert {r["size"] for r in rows} == {"64x64", "224x224", "480x640"} and all(r["p50_us"] > 0 for r in rows)
    assert (ROOT / "bench" / "results" / "codecs.json").read_bytes() == kept
