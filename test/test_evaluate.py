"""`moejepa-train evaluate`: JSON report (open-loop vs copy-last, routing, probes, closed loop) + PNGs."""

import json
import math
import os

import numpy as np
import pytest
import torch

from training.cli import main
from training.evaluate import modes_of, mutual_information


def test_mutual_information():
    a = np.array([0, 0, 1, 1] * 25)
    assert mutual_information(a, a) == pytest.approx(1.0)
    assert mutual_information(a, np.array([0, 1] * 50)) == pytest.approx(0.0, abs=1e-9)
    assert mutual_information(a, np.zeros(100, int)) == pytest.approx(0.0)
    m = modes_of(np.array([[10, 5, 32, 30], [40, 5, 32, 30], [30, 5, 32, 30]], np.float32), two_rooms=True)
    assert m["room_side"].tolist() == [0, 1, 0] and m["near_wall"].tolist() == [0, 0, 1]


def test_evaluate_writes_json_and_pngs(tmp_path, capsys):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        o = f"run.out_dir={tmp_path}"
        assert main(["collect", "-c", "tiny", o, "collect.episodes=4"]) == 0
        assert main(["fit", "-c", "tiny", o, "train.steps=4"]) == 0
        capsys.readouterr()
        assert (
            main(
                [
                    "evaluate",
                    "-c",
                    "tiny",
                    o,
                    "eval.probe_samples=64",
                    "eval.probe_epochs=5",
                    "eval.max_episode_steps=4",
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(n)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rep = json.load(open(summary["report"]))
    v = rep["verdict"]  # the one-line judgement, its numbers, and fit's own on the held-out episodes
    assert summary["verdict"] == v["line"] and v["line"].startswith("verdict: ") and v["horizons"] == [1, 5, 10]
    assert isinstance(v["ok"], bool) and len(v["open_loop_ratio"]) == 3 and set(v["probe_r2"]) <= {"x", "y"}
    fit_v = json.load(open(tmp_path / "fit" / "verdict.json"))
    assert fit_v["line"].startswith("verdict: ") and fit_v["windows"] == 256
    ol = rep["open_loop"]
    assert ol["horizon"] == [1, 2, 3] and len(ol["ratio"]) == 3
    assert all(math.isfinite(v) and v >= 0 for v in ol["model"] + ol["copy_last"])
    rt = rep["routing"]
    assert len(rt["load"]) == 4 and sum(rt["load"]) == pytest.approx(1.0) and rt["load_cv"] >= 0
    assert 0 <= rt["router_entropy"] <= math.log(4) + 1e-6
    assert set(rt["specialisation_bits"]) == {"room_side", "near_wall"}
    for probe in ("probe", "probe_random_init"):
        for kind in ("linear", "mlp"):
            assert {"normal", "wall", "expert"} <= set(rep[probe][kind])
            assert all(v >= 0 for v in rep[probe][kind].values())
    cl = rep["closed_loop"]
    assert cl["episodes"] == 1 and 0 <= cl["success_rate"] <= 1 and len(cl["final_distance"]) == 1
    names = sorted(os.path.basename(p) for p in rep["plots"])
    assert names == ["error_vs_horizon.png", "expert_heatmap.png", "loss_curves.png"]
    for p in rep["plots"]:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
