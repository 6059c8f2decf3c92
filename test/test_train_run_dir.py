"""What a run directory holds and how a second start treats it (training.run_dir via `moejepa-train`):
run.resume=never moves the old run aside instead of deleting or mixing with it, every run dir records its
config, command line and git sha, a resumed run names a changed model config in one line, domain errors are
one line with exit code 2, and the printed JSON never holds NaN."""

import glob
import json
import os

import pytest
import torch

from training.cli import main
from training.config import load_config
from training.logging_utils import read_metrics
from training.train_state import CheckpointManager

pytestmark = pytest.mark.usefixtures("one_thread")


def strict_json(line: str) -> dict:
    def no_nan(c):
        raise AssertionError(f"{c} in the printed JSON")

    return json.loads(line, parse_constant=no_nan)


def train(capsys, *args) -> tuple[int, dict | None, list[str]]:
    """(exit code, the printed JSON summary or None, stderr lines)."""
    rc = main([*args[:1], "-c", "tiny", *args[1:]])
    cap = capsys.readouterr()
    out = cap.out.strip().splitlines()
    return rc, strict_json(out[-1]) if rc == 0 else None, cap.err.strip().splitlines()


@pytest.fixture
def collected(tmp_path, capsys):
    o = f"run.out_dir={tmp_path}"
    assert train(capsys, "collect", o, "collect.episodes=3", "collect.max_steps=20")[0] == 0
    return tmp_path, o


def test_resume_never_moves_the_old_run_aside_and_never_mixes_them(collected, capsys):
    root, o = collected
    fit = root / "fit"
    rc, first, _ = train(capsys, "fit", o, "train.steps=4", "run.ckpt_every=2", "run.log_every=1")
    assert rc == 0 and first["step"] == 4
    rc, fresh, err = train(capsys, "fit", o, "train.steps=2", "run.ckpt_every=2", "run.log_every=1", "run.resume=never")
    assert rc == 0 and fresh["step"] == 2 and fresh["resumed_from"] is None
    (old,) = glob.glob(f"{fit}.*")
    assert any(f"aside to {old}" in line for line in err)
    # the new run: its own checkpoint, `latest` pointing at it, only its own metrics
    assert CheckpointManager(str(fit / "ckpt")).latest() == str(fit / "ckpt" / "step_00000002")
    assert sorted(os.listdir(fit / "ckpt")) == ["latest", "step_00000002"]
    assert [r["step"] for r in read_metrics(str(fit))] == [1, 2]
    # the old run, whole
    assert CheckpointManager(os.path.join(old, "ckpt")).latest().endswith("step_00000004")
    assert [r["step"] for r in read_metrics(old)] == [1, 2, 3, 4]
    # provenance: the resolved config (loadable), the command line and the git sha
    cfg = load_config([str(fit / "config.yaml")])
    assert cfg.train.steps == 2 and cfg.run.resume == "never" and cfg.model["latent_dim"] == 16
    (start,) = json.load(open(fit / "run.json"))["starts"]
    assert start["command"][:2] == ["moejepa-train", "fit"] and "run.resume=never" in start["command"]
    assert start["git_sha"] is None or len(start["git_sha"]) == 40
    # resuming a finished run trains no step: no rate to print, and the JSON says null, not NaN
    rc, again, _ = train(capsys, "fit", o, "train.steps=2")
    assert rc == 0 and again["step"] == 2 and again["samples_per_s"] is None
    assert len(json.load(open(fit / "run.json"))["starts"]) == 2


def test_resume_errors_and_a_changed_model_config_are_one_line(collected, capsys):
    root, o = collected
    assert train(capsys, "fit", o, "train.steps=4", "train.stop_at=2")[0] == 0
    rc, res, err = train(capsys, "fit", o, "train.steps=4", "model.router_noise=0.5")
    assert rc == 0 and res["step"] == 4 and res["resumed_from"].endswith("step_00000002")
    (line,) = [ln for ln in err if "changed model config" in ln]
    assert "model.router_noise: default -> 0.5" in line
    rc, _, err = train(capsys, "fit", o, "train.steps=6", "model.latent_dim=8")
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert "model.latent_dim: 16 -> 8" in err[0] and "run.resume=never" in err[0]
    rc, _, err = train(capsys, "fit", o, f"run.resume={root / 'nowhere'}")
    assert rc == 2 and len(err) == 1 and "run.resume=" in err[0] and "nowhere" in err[0]
    (root / "bad.safetensors").write_bytes(b"not a checkpoint")
    rc, _, err = train(capsys, "refine", o, f"refine.checkpoint={root / 'bad.safetensors'}")
    assert rc == 2 and len(err) == 1 and "bad.safetensors" in err[0]


def test_refine_resumes_exactly_and_refine_and_goal_log_like_fit(collected, capsys):
    from safetensors.torch import load_file

    root, o = collected
    assert train(capsys, "fit", o, "train.steps=2")[0] == 0
    args = ["refine", o, "refine.steps=6", "refine.horizon=2", "refine.batch_size=8", "run.ckpt_every=3"]
    args += ["run.log_every=1", "run.tensorboard=true"]
    rc, whole, _ = train(capsys, *args)
    assert rc == 0 and whole["resumed_from"] is None
    ref = load_file(whole["checkpoint"])
    assert [r["step"] for r in read_metrics(str(root / "refine"))] == [1, 2, 3, 4, 5, 6]
    assert all("loss/latent" in r and "optim/lr" in r for r in read_metrics(str(root / "refine")))
    assert glob.glob(str(root / "refine" / "tb" / "events.*"))
    # resumed from step 3: the same weights, loss curve and data draws as the uninterrupted run
    rc, resumed, _ = train(capsys, *args, f"run.resume={root / 'refine' / 'ckpt' / 'step_00000003'}")
    assert rc == 0 and resumed["resumed_from"].endswith("step_00000003")
    got = load_file(resumed["checkpoint"])
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert (resumed["first_latent_loss"], resumed["last_latent_loss"]) == (
        whole["first_latent_loss"],
        whole["last_latent_loss"],
    )
    assert len(json.load(open(root / "refine" / "run.json"))["starts"]) == 2
    # goal: a progress bar's steps and scalars too, and the same exact resume
    goal = ["goal", o, "goal.steps=4", "goal.batch_size=16", "goal.embed_dim=4", "goal.hidden=8", "run.log_every=2"]
    goal += ["run.ckpt_every=2"]
    rc, whole, _ = train(capsys, *goal)
    assert rc == 0 and whole["resumed_from"] is None
    assert [r["step"] for r in read_metrics(str(root / "goal"))] == [2, 4]
    ref = load_file(whole["checkpoint"])
    rc, resumed, _ = train(capsys, *goal, f"run.resume={root / 'goal' / 'ckpt' / 'step_00000002'}")
    assert rc == 0 and resumed["resumed_from"].endswith("step_00000002")
    got = load_file(resumed["checkpoint"])
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert (resumed["first_loss"], resumed["last_loss"]) == (whole["first_loss"], whole["last_loss"])
    rc, _, err = train(capsys, *goal, "goal.hidden=16")  # other goal options: one line, nothing mixed
    assert rc == 2 and any("goal.hidden: 8 -> 16" in ln for ln in err)
    rc, _, err = train(capsys, *goal, "goal.hidden=16", "run.resume=never")
    assert rc == 0 and len(glob.glob(f"{root / 'goal'}.*")) == 1 and any("aside" in ln for ln in err)
    assert [r["step"] for r in read_metrics(str(root / "goal"))] == [2, 4]
    assert os.path.isfile(root / "goal" / "config.yaml") and os.path.isfile(root / "goal" / "run.json")
