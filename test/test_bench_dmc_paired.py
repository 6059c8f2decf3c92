"""bench.experiments.dmc_paired: evaluations paired on (seed, frames) across two recorded runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.experiments import dmc_paired

ROOT = Path(__file__).resolve().parents[1]


def run_json(path, curves):
    doc = {"figures": {"tasks": {"reacher_easy": {"curves": curves}}}}
    path.write_text(json.dumps(doc))
    return str(path)


def point(frames, returns):
    return {"frames": frames, "return_mean": sum(returns) / len(returns), "returns": returns}


def test_pairs_episodes_and_reports_who_leads(tmp_path):
    a = {"0": [point(5000, [0, 10]), point(10000, [100, 100])], "1": [point(5000, [50, 50]), point(10000, [0, 0, 0])]}
    b = {
        "0": [point(5000, [20, 30]), point(10000, [90, 100]), point(15000, [1, 1])],  # 15k: A never got there
        "1": [point(5000, [60, 70]), point(10000, [0, 0])],  # 10k: 3 against 2 episodes, left out
        "2": [point(5000, [999, 999])],  # a seed A does not have
    }
    res = dmc_paired.compare(
        dmc_paired.curves(run_json(tmp_path / "a.json", a), "reacher_easy"),
        dmc_paired.curves(run_json(tmp_path / "b.json", b), "reacher_easy"),
    )
    assert res["cells"] == 3 and res["episodes"] == 6
    assert res["skipped"] == [["1", 10000, "3 against 2 episodes"]]
    # cell means of B - A: seed 0 at 5k +20, at 10k -5; seed 1 at 5k +15
    assert res["mean_diff"] == pytest.approx(10.0)
    assert res["b_ahead_cells"] == 2 and res["b_behind_cells"] == 1
    assert res["per_seed_mean_diff"] == {"0": 7.5, "1": 15.0}
    assert res["per_frames"] == {"5000": {"mean_diff": 17.5, "seeds": 2}, "10000": {"mean_diff": -5.0, "seeds": 1}}
    lo, hi = res["ci95_cells"]
    assert -5.0 <= lo <= 10.0 <= hi <= 20.0
    lo, hi = res["ci95_seeds_t"]  # t(0.975, 1) = 12.706; seed means 7.5 and 15: mean 11.25, standard error 3.75
    assert lo == pytest.approx(11.25 - 12.706 * 3.75, abs=0.1) and hi == pytest.approx(11.25 + 12.706 * 3.75, abs=0.1)
    assert (
        dmc_paired.compare(
            dmc_paired.curves(str(tmp_path / "a.json"), "reacher_easy"),
            dmc_paired.curves(str(tmp_path / "b.json"), "reacher_easy"),
            frames_max=5000,
        )["cells"]
        == 2
    )


def test_cli_on_the_record_and_a_clear_error_for_a_missing_task(tmp_path):
    argv = [sys.executable, "-m", "bench.experiments.dmc_paired", "--task", "reacher_easy"]
    runs = [
        "--a",
        str(ROOT / "bench/results/dmc_pixels.json"),
        "--b",
        str(ROOT / "bench/results/dmc_pixels_idm50.json"),
    ]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    p = subprocess.run(argv + runs, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "out/bench/dmc_paired.json").read_text())["figures"]
    assert doc["cells"] == 42 and doc["episodes"] == 210  # 3 seeds x 14 evaluations x 5 episodes to 70k
    argv[4] = "walker_walk"
    p = subprocess.run(argv + runs, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "has no task 'walker_walk'" in p.stderr
