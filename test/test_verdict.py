"""`training.verdict`: the one-line judgement of a world model, on real collected bags and the tiny model."""

import json
import math

import numpy as np
import pytest
import torch

from training.cli import main
from training.config import load_config
from training.datasets import open_data
from training.probing import probe_r2, state_names
from training.verdict import Verdict, judge, latent_stats, run_idm_ratio


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two-Rooms bags from `collect` (tiny config); episodes of `max_steps` frames."""

    def make(max_steps: int):
        d = tmp_path_factory.mktemp(f"verdict{max_steps}")
        over = [f"run.out_dir={d}", "collect.episodes=4", f"collect.max_steps={max_steps}"]
        assert main(["collect", "-c", "tiny", *over]) == 0
        return load_config(["tiny"], over)

    return make


def data_for(cfg, model):
    return open_data(cfg, model.cfg.image_size, model.cfg.frame_stack + 1)


def zeroed(model, prefix: str):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(prefix):
                p.zero_()
    return model.eval()


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(cfg):
    from moejepa_ros.model import WorldModel
    from training.stages import model_config

    torch.manual_seed(0)
    return WorldModel(model_config(cfg, 2)).eval()


def test_a_model_that_predicts_copy_last_is_not_useful_for_that_reason(tiny_run):
    cfg = tiny_run(24)
    model = zeroed(tiny(cfg), "predictor.")  # every expert outputs 0: z_t+1 = z_t exactly
    v = judge(model, data_for(cfg, model), windows=32, seed=0, idm_ratio=float("nan"))
    assert v.horizons == [1, 5, 10] and v.idm_ratio is None and "idm" not in v.reasons  # NaN: not measured
    assert v.open_loop_ratio == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    assert not v.ok and "copy_last" in v.reasons
    line = v.line()
    assert line.startswith("verdict: NOT USEFUL - worse than copy-last at 1, 5, 10 steps")
    assert "try: longer training" in line and "\n" not in line


def test_a_collapsed_encoder_is_reported_as_collapsed(tiny_run):
    cfg = tiny_run(24)
    model = zeroed(tiny(cfg), "encoder.")  # a constant latent, whatever the frames
    v = judge(model, data_for(cfg, model), windows=32, seed=0, idm_ratio=0.97)
    assert v.z_std == pytest.approx(0.0, abs=1e-6)
    assert {"collapse", "idm"} <= set(v.reasons)
    assert "latent collapsed (z_std 0" in v.line() and "fit.idm_weight=1" in v.line()
    assert "idm ratio 0.97" in v.line()


def test_short_held_out_episodes_report_the_horizons_that_fit_and_the_json_is_complete(tiny_run, tmp_path):
    cfg = tiny_run(8)  # 8 frames, frame_stack 3: 5 steps ahead at most
    model = tiny(cfg)
    v = judge(model, data_for(cfg, model), windows=16, seed=0)
    assert v.horizons == [1, 5] and len(v.open_loop_ratio) == 2
    assert set(v.probe_r2) == {"x", "y"}  # wall_x / door_y do not vary within the held-out episode
    d = json.load(open(v.write(str(tmp_path / "v" / "verdict.json"))))
    assert d["ok"] is v.ok and d["line"] == v.line() and d["idm_ratio"] is None
    assert "idm ratio n/a" in d["line"]


def test_the_line_of_a_useful_model_says_what_it_beats():
    v = Verdict([1, 5, 10], [0.41, 0.62, 0.8], 0.31, 0.1, 0.12, None, {"x": 0.93, "y": 0.91, "yaw": 0.88})
    assert v.ok
    assert v.line() == (
        "verdict: USEFUL - beats copy-last at 1/5/10 steps (0.41/0.62/0.80x), latent std 0.31, "
        "moves 0.12/step, idm ratio n/a, probe R2 x 0.93 y 0.91 yaw 0.88"
    )


def test_a_linear_probe_reads_a_pose_that_the_latent_encodes_linearly():
    rng = np.random.default_rng(0)
    n = 600
    pose = np.stack([rng.uniform(-3, 3, n), rng.uniform(-2, 2, n), rng.uniform(-math.pi, math.pi, n)], 1)
    feats = np.stack([pose[:, 0], pose[:, 1], np.sin(pose[:, 2]), np.cos(pose[:, 2])], 1)
    z = feats @ rng.normal(size=(4, 16)) + 0.01 * rng.normal(size=(n, 16))
    z, s = torch.tensor(z, dtype=torch.float32), torch.tensor(pose, dtype=torch.float32)
    r2 = probe_r2(z[:400], s[:400], z[400:], s[400:], ["x", "y", "yaw"])
    assert set(r2) == {"x", "y", "yaw"} and min(r2.values()) > 0.95
    noise = torch.randn(n, 16)
    r2 = probe_r2(noise[:400], s[:400], noise[400:], s[400:], ["x", "y", "yaw"])
    assert max(r2.values()) < 0.2


def test_latent_motion_is_the_step_over_the_spread():
    z = torch.zeros(2, 3, 1)
    z[0, :, 0] = torch.tensor([0.0, 1.0, 2.0])
    z[1, :, 0] = torch.tensor([4.0, 5.0, 6.0])
    std, motion = latent_stats(z)
    assert std == pytest.approx(float(z.reshape(-1).std()))
    assert motion == pytest.approx(1.0 / float((z.reshape(-1) - 3.0).abs().mean()))


def test_state_names_come_from_the_cache_index(tiny_run):
    cfg = tiny_run(24)
    model = tiny(cfg)
    cache = data_for(cfg, model).cache
    assert state_names(cache) == ["x", "y", "wall_x", "door_y"]
    cache.index["state_names"] = ["x", "y", "yaw", "v"]
    assert state_names(cache) == ["x", "y", "yaw", "v"]


def test_the_idm_ratio_is_read_from_the_run_log(tmp_path):
    assert run_idm_ratio(str(tmp_path)) is None
    rows = [{"step": i, "loss/idm_ratio": r} for i, r in enumerate([2.0, 0.5, 0.5, 0.5, 0.5, 0.5])]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_idm_ratio(str(tmp_path / "absent"), str(tmp_path)) == pytest.approx(0.5)
