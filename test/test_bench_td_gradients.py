"""bench.experiments.td_gradients on a tiny online-loop agent trained on real MuJoCo cartpole: every term's
gradient reaches the encoder, a zero-weighted term gives none, and the run's episodes are left as they were."""

import json
import os

import pytest

from bench.experiments import td_gradients
from testing.models import TINY_DMC_AGENT
from training.cli import main as train

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_agent(out, capsys, *extra):
    tiny = TINY_DMC_AGENT + ["mbrl.seed_episodes=1", "mbrl.eval_every=1", "mbrl.eval_episodes=1"]
    assert train(["mbrl", "-c", "dmc", f"run.out_dir={out}", *tiny, "mbrl.iterations=1", *extra]) == 0
    capsys.readouterr()
    return str(out)


def test_term_gradients_on_the_encoder_and_the_episodes_untouched(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tiny_agent(tmp_path / "a", capsys)
    quiet = tiny_agent(tmp_path / "b", capsys, "model.losses.value=0")
    episodes = os.path.join(run, "mbrl", "episodes")
    before = {f: os.path.getmtime(os.path.join(episodes, f)) for f in os.listdir(episodes)}
    res = td_gradients.main(["--runs", run, quiet, "--batches", "2", "--batch-size", "4", "--horizon", "3"])
    a, b = res["agents"]
    assert a["episodes"] == 2 and a["weights"]["value"] == 0.1 and b["weights"]["value"] == 0.0
    assert all(v > 0 for v in a["encoder_grad_norm"].values()) and a["update_grad_norm"] > 0
    assert b["encoder_grad_norm"]["value"] == 0.0 and b["encoder_grad_norm"]["latent"] > 0
    assert a["value_over_latent"] == round(a["encoder_grad_norm"]["value"] / a["encoder_grad_norm"]["latent"], 2)
    assert {f: os.path.getmtime(os.path.join(episodes, f)) for f in os.listdir(episodes)} == before
    doc = json.loads((tmp_path / "out" / "bench" / "td_gradients.json").read_text())
    assert doc["figures"]["agents"][0]["run"] == run
