"""bench.experiments.dmc_pixels on real MuJoCo cartpole with a tiny model: the per-task summary, and a rerun
that finds the seed at its budget only summarises it (no training command runs), and --seed-ids runs one seed."""

import json

import pytest

from bench.experiments import dmc_pixels
from testing.models import TINY_DMC_AGENT

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_bench_summarises_per_task_and_skips_a_finished_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--tasks", "cartpole_swingup", "--frames", "2000", "--seeds", "1", "--sac-seeds", "0"]
    argv += ["--eval-episodes", "1", "--out", str(tmp_path / "runs"), "--set", *TINY_DMC_AGENT]
    res = dmc_pixels.main(argv)
    t = res["tasks"]["cartpole_swingup"]
    assert t["seeds"] == [0] and t["frames"] == 2 * 6 * 8  # 1 seed + 1 planner episode of 6 steps, repeat 8
    assert t["return_mean"] == t["returns"]["0"] == t["curves"]["0"][-1]["return_mean"]
    assert set(t["seconds_per_1k_frames"]) >= {"env", "planning", "training"}
    assert t["anchors_100k"]["td-mpc"] == 770
    assert t["runs"]["0"]["seed_episodes"] == 1
    doc = json.loads((tmp_path / "out" / "bench" / "dmc_pixels.json").read_text())
    assert doc["git_sha"] and doc["command"].startswith("python") and doc["machine"]["cores"]
    assert "$ training.cli mbrl" in capsys.readouterr().out
    again = dmc_pixels.main(argv)
    assert "$ training.cli" not in capsys.readouterr().out  # at its budget: summarised, not rerun
    assert again["tasks"]["cartpole_swingup"]["returns"] == t["returns"]
    both = dmc_pixels.main(argv + ["--seed-ids", "1"])  # one process per seed: only seed 1 runs, seed 0 is kept
    ran = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ training.cli")]
    assert len(ran) == 1 and "run.seed=1 " in ran[0]
    assert both["tasks"]["cartpole_swingup"]["seeds"] == [0, 1]


def test_the_seed_mean_uses_the_points_every_seed_reached():
    curves = {
        "0": [{"frames": 5000, "return_mean": 100.0}, {"frames": 10000, "return_mean": 300.0}],
        "1": [{"frames": 5000, "return_mean": 200.0}],  # still running
    }
    x, mean = dmc_pixels.seed_mean(curves)
    assert x.tolist() == [5000.0] and mean.tolist() == [150.0]
    assert dmc_pixels.seed_mean({})[0].size == 0


def test_the_seed_phase_is_planets_five_episodes_or_td_mpcs_env_steps():
    assert dmc_pixels.seed_episodes("cartpole_swingup", 0) == 5
    assert dmc_pixels.seed_episodes("cartpole_swingup", 5000) == 40  # 125 steps per episode at repeat 8
    assert dmc_pixels.seed_episodes("reacher_easy", 5000) == 20  # 250 steps at repeat 4
    assert dmc_pixels.budget(100_000, 40) == (40, 60)
    assert dmc_pixels.budget(3000, 40) == (2, 1)  # a budget too small for the seed phase keeps a planner episode


def test_the_sac_baseline_reports_its_curve_in_frames(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--tasks", "cartpole_swingup", "--frames", "1000", "--seeds", "0", "--sac-seeds", "1"]
    argv += ["--eval-every", "496", "--eval-episodes", "1", "--out", str(tmp_path / "runs")]
    res = dmc_pixels.main(argv + ["--set", "eval.max_episode_steps=25"])
    sac = res["sac"]["cartpole_swingup"]["0"]
    assert sac["frames"] == 1000 and sac["env_steps"] == 125  # repeat 8
    assert [p["frames"] for p in sac["curve"]] == [496, 992, 1000]  # every 62 env steps, and the budget
    assert sac["curve"][-1]["return_mean"] == sac["return_mean"]
    assert "baseline.eval_every=62" in capsys.readouterr().out
    again = dmc_pixels.main(argv + ["--sac-seed-ids", "0"])
    assert "$ training.cli" not in capsys.readouterr().out  # at its budget: summarised, not rerun
    assert again["sac"]["cartpole_swingup"]["0"]["curve"] == sac["curve"]


def test_a_packed_run_goes_on_in_another_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ["--tasks", "cartpole_swingup", "--seeds", "1", "--sac-seeds", "0", "--eval-episodes", "1"]
    base += ["--set", *TINY_DMC_AGENT]
    dmc_pixels.main(base + ["--frames", "2000", "--out", str(tmp_path / "a")])
    dmc_pixels.main(base + ["--frames", "2000", "--out", str(tmp_path / "a"), "--pack", str(tmp_path / "kept")])
    assert (tmp_path / "kept" / "cartpole_swingup" / "seed0" / "pack.json").is_file()
    capsys.readouterr()
    # another session: the runs directory is gone; the pack is re-rendered and the run goes on from episode 2
    res = dmc_pixels.main(base + ["--frames", "3000", "--out", str(tmp_path / "b"), "--unpack", str(tmp_path / "kept")])
    out = capsys.readouterr().out
    assert "unpacked cartpole_swingup seed 0: 2 episodes" in out and "$ training.cli mbrl" in out
    run = res["tasks"]["cartpole_swingup"]["runs"]["0"]
    assert run["episodes"] == 3 and run["frames"] == 3 * 6 * 8
