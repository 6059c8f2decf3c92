"""`moejepa-train` end to end on config/train/tiny.yaml: every subcommand runs and leaves a
checkpoint that `load_checkpoint` + `make_planner` load and plan with."""

import json
import os

import numpy as np
import pytest
import torch

from moejepa_ros.model.checkpoint import load_checkpoint, read_meta
from moejepa_ros.planning import make_planner
from testing.bags import CAMERA, CMD, ODOM, README_TOPICS, robot_bag
from testing.models import PLANNER, tiny_model
from training.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def cli(capsys, command, *overrides):
    """`moejepa-train <command> -c tiny <overrides>`, which must succeed; its last output line, a JSON summary."""
    rc = main([command, "-c", "tiny", *overrides])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0, out
    return json.loads(out[-1])


def refused(capsys, command, *overrides) -> str:
    """`moejepa-train <command> -c tiny <overrides>`, which must exit 2 (a bad config); its stderr."""
    assert main([command, "-c", "tiny", *overrides]) == 2
    return capsys.readouterr().err


def plans_with(path, goal=True):
    model, meta = load_checkpoint(path)
    assert meta["action_low"] == pytest.approx([-2.45, -2.45]) and meta["action_high"] == pytest.approx([2.45, 2.45])
    assert meta["preprocessing"]["frame_stack"] == model.cfg.frame_stack
    objectives = {"reward": {"enabled": False}, "goal": {"enabled": True}} if goal else None
    planner = make_planner(PLANNER, model, objectives, meta["action_low"], meta["action_high"])
    with torch.no_grad():
        frames = torch.randint(0, 255, (1, model.cfg.frame_stack, 64, 64, 3), dtype=torch.uint8)
        z = model.encode(frames)[0]
    plan = planner.plan(z, z if goal else None)
    assert plan.ok and plan.actions.shape == (3, 2)
    return model, meta


@pytest.fixture
def fitted(tmp_path, capsys):
    """A run dir with 4 short episodes collected and a 4-step fit: (its run.out_dir override, the fit's checkpoint)."""
    o = f"run.out_dir={tmp_path}"
    cli(capsys, "collect", o, "collect.episodes=4", "collect.max_steps=30")
    return o, cli(capsys, "fit", o, "train.steps=4")["checkpoint"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run dir with collected bags and a fitted model, built once for the tests that start from them."""
    run_dir = str(tmp_path_factory.mktemp("tiny_run"))
    o = f"run.out_dir={run_dir}"
    assert main(["collect", "-c", "tiny", o]) == 0
    assert main(["fit", "-c", "tiny", o, "train.steps=8"]) == 0
    return run_dir


def test_collect_pretrain_fit_export(tmp_path, capsys):
    run_dir = str(tmp_path)
    o = f"run.out_dir={run_dir}"
    r = cli(capsys, "collect", o)
    assert len(r["bags"]) == 1 and os.path.isdir(r["bags"][0])
    refused(capsys, "collect", o)  # refuses to overwrite bags silently
    r = cli(capsys, "pretrain", o, "train.steps=6")
    assert r["step"] == 6
    plans_with(r["checkpoint"])
    assert read_meta(r["checkpoint"])["training"]["stage"] == 1
    r = cli(capsys, "fit", o, "train.steps=8", "fit.init_encoder=auto", "fit.freeze_encoder=true")
    assert r["step"] == 8 and "reward" in r["last"]
    model, meta = plans_with(r["checkpoint"])
    pre, _ = load_checkpoint(os.path.join(run_dir, "pretrain", "model.safetensors"))
    for k, v in pre.encoder.state_dict().items():  # frozen Stage-1 encoder carried over unchanged
        assert torch.equal(v, model.encoder.state_dict()[k])
    assert meta["training"]["stage"] == 2 and meta["training"]["step"] == 8
    assert os.path.isdir(os.path.join(run_dir, "fit", "tb")) and os.listdir(os.path.join(run_dir, "fit", "tb"))
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "fit", "metrics.jsonl"))]
    keys = set().union(*rows)
    for k in (
        "loss/latent",
        "loss/reward",
        "optim/lr",
        "optim/grad_norm",
        "routing/load_0",
        "routing/entropy",
        "latent/std",
        "perf/samples_per_s",
        "perf/data_wait_share",
    ):
        assert k in keys, k
    r = cli(capsys, "export", o)
    assert r["source"].endswith(os.path.join("fit", "model.safetensors"))
    _, meta = plans_with(r["export"])
    assert meta["training"]["stage"] == 2 and "optimizer" not in json.dumps(meta)


def test_mbrl_and_distill(tiny_run, capsys):
    run_dir = tiny_run
    o = f"run.out_dir={run_dir}"
    r = cli(capsys, "mbrl", o, "mbrl.iterations=1", "mbrl.fit_steps_per_iter=4", "mbrl.max_episode_steps=6")
    assert r["rounds"] == 1 and r["eval"][0] is not None
    plans_with(r["checkpoint"])
    assert os.listdir(os.path.join(run_dir, "mbrl", "bags", "round_000"))
    r = cli(capsys, "distill", o, "distill.samples=8", "distill.steps=10", "mbrl.max_episode_steps=6")
    assert len(r["history"]) == 2 and r["history"][1]["actor_return_mean"] is not None
    model, _ = plans_with(r["checkpoint"])
    src, _ = load_checkpoint(os.path.join(run_dir, "mbrl", "model.safetensors"))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, src.state_dict()[k])]
    assert changed and all(k.startswith("actor_head.") for k in changed)  # only the actor trained


@pytest.mark.parametrize("kind", ["dense", "pixel_recon", "no_pretrain"])
def test_model_baselines(tiny_run, tmp_path, capsys, kind):
    o = f"run.out_dir={tmp_path}/{kind}"
    r = cli(
        capsys,
        "fit",
        o,
        f"data.bags=[{tiny_run}/collect/bags]",
        f"baseline.kind={kind}",
        "train.steps=3",
        "export.action_low=[-2.45,-2.45]",
        "export.action_high=[2.45,2.45]",
    )
    model, meta = plans_with(r["checkpoint"])
    assert meta["training"]["baseline"] == kind
    if kind == "dense":
        from moejepa_ros.model.config import ModelConfig, active_predictor_params

        moe = ModelConfig.from_dict({**meta["training"]["config"]["model"], "action_dim": 2})
        assert model.cfg.dense and abs(active_predictor_params(model.cfg) / active_predictor_params(moe) - 1) < 0.05
    if kind == "pixel_recon":
        assert "recon" in r["last"]


def test_model_free_baseline_ppo(tmp_path, capsys):
    r = cli(
        capsys,
        "fit",
        f"run.out_dir={tmp_path}/ppo",
        "baseline.kind=ppo",
        "baseline.rl_steps=64",
        "eval.max_episode_steps=8",
    )
    assert os.path.isfile(r["policy"]) and r["env_steps"] == 64
    from safetensors import safe_open

    with safe_open(r["policy"], "pt") as f:
        assert f.metadata()["algo"] == "ppo"


def test_bad_config_exits_2(capsys, tmp_path):
    assert "optim.lr" in refused(capsys, "fit", "optim.lr=-1")
    assert "collect.policy_kwargs" in refused(
        capsys, "collect", f"run.out_dir={tmp_path}", "collect.policy_kwargs.cross_probability=0"
    )


def test_refine_moves_only_the_predictor(fitted, capsys):
    """`refine`: the predictor re-fit on cached latents with long rollouts; encoder, target and heads
    stay bit-identical, the loss falls, export picks the refined model, bad horizons exit 2."""
    o, fit = fitted
    r = cli(
        capsys,
        "refine",
        o,
        "refine.steps=60",
        "refine.horizon=8",
        "refine.batch_size=16",
        "refine.lr=3e-3",
        "run.log_every=10",
    )
    assert r["source"] == fit and r["steps"] == 60 and r["horizon"] == 8
    assert r["last_latent_loss"] < r["first_latent_loss"]
    assert {"1", "5"} <= set(r["gap_after"]) and {"1", "5"} <= set(r["gap_before"])
    v = json.load(open(os.path.join(os.path.dirname(r["checkpoint"]), "verdict.json")))
    assert r["verdict"] == v["line"] and v["line"].startswith("verdict: ")  # judged on the held-out episode
    before, _ = load_checkpoint(fit)
    after, meta = plans_with(r["checkpoint"])
    sb, sa = before.state_dict(), after.state_dict()
    moved = [k for k in sb if not torch.equal(sb[k], sa[k])]
    assert moved and all(k.startswith("predictor.") for k in moved)
    assert meta["training"]["subcommand"] == "refine" and meta["training"]["refine"]["horizon"] == 8
    e = cli(capsys, "export", o)
    assert e["source"].endswith(os.path.join("refine", "model.safetensors"))
    assert "refine.horizon=500" in refused(capsys, "refine", o, "refine.horizon=500")
    assert "refine.rho" in refused(capsys, "refine", o, "refine.rho=0")


def test_goal_distance_adds_only_the_goal_head(fitted, capsys):
    """`goal`: the goal-distance head regressed onto shortest paths through the recorded episodes
    (on cached and on predicted latents); everything else stays bit-identical, the planner plans with
    metric=learned, export picks it, and bad options exit 2."""
    o, fit = fitted
    r = cli(
        capsys,
        "goal",
        o,
        "goal.steps=80",
        "goal.batch_size=64",
        "goal.embed_dim=8",
        "goal.hidden=32",
        "goal.imagine_steps=2",
        "goal.lr=1e-3",
        "run.log_every=10",
    )
    assert r["source"] == fit and r["steps"] == 80
    assert r["last_loss"] < r["first_loss"]
    assert {"relative_error", "mean_steps", "mean_distance", "imagined_gap_h2"} <= set(r["held_out"])
    before, _ = load_checkpoint(fit)
    after, meta = load_checkpoint(r["checkpoint"])
    assert after.cfg.goal_embed_dim == 8 and "goal_distance" in after.heads
    sb, sa = before.state_dict(), after.state_dict()
    assert all(torch.equal(sb[k], sa[k]) for k in sb)
    assert {k for k in sa if k not in sb} and all(k.startswith("goal_head.") for k in sa if k not in sb)
    assert meta["training"]["subcommand"] == "goal"
    objectives = {"reward": {"enabled": False}, "goal": {"enabled": True, "metric": "learned", "every_step": True}}
    planner = make_planner(PLANNER, after, objectives, meta["action_low"], meta["action_high"])
    with torch.no_grad():
        z = after.encode(torch.randint(0, 255, (1, after.cfg.frame_stack, 64, 64, 3), dtype=torch.uint8))[0]
        d_self = float(after.goal_distance(z, z))
    assert d_self < 1e-3  # the distance from a latent to itself is zero by construction
    assert planner.plan(z, z).ok
    e = cli(capsys, "export", o)
    assert e["source"].endswith(os.path.join("goal", "model.safetensors"))
    assert "goal.revisit" in refused(capsys, "goal", o, "goal.revisit=0")
    assert "goal.imagine_steps=500" in refused(capsys, "goal", o, "goal.imagine_steps=500")


def test_goal_reach_learns_the_local_step_count(fitted, capsys):
    """`goal.reach=N`: near pairs regress their steps at a low expectile, far ones are pushed to >= N;
    the held-out near pairs' distances grow with their step count."""
    o, fit = fitted
    r = cli(
        capsys,
        "goal",
        o,
        "goal.reach=6",
        "goal.steps=150",
        "goal.batch_size=64",
        "goal.embed_dim=8",
        "goal.hidden=32",
        "goal.imagine_steps=1",
        "goal.lr=3e-3",
    )
    assert r["last_loss"] < r["first_loss"] and r["held_out"]["mean_steps"] <= 6
    model, meta = load_checkpoint(r["checkpoint"])
    assert meta["training"]["goal"]["reach"] == 6
    from training.goal_distance import _Flat, _Local

    z = torch.randn(40, model.cfg.latent_dim)
    d = _Flat([z[:25], z[25:]], [z[:25], z[25:]], [torch.zeros(25, 2), torch.zeros(15, 2)])
    zi, gi, tgt, near = _Local(d, 6, 1).sample(d, 2000, 0.2, torch.Generator().manual_seed(0))
    assert torch.all(tgt[near] == (gi - zi)[near]) and torch.all((tgt[near] >= 0) & (tgt[near] <= 6))
    assert torch.all(tgt[~near] == 6) and 0.1 < (~near).float().mean() < 0.3
    assert "goal.expectile" in refused(capsys, "goal", o, "goal.reach=4", "goal.expectile=1.5")


def test_learned_metric_needs_the_goal_head():
    from moejepa_ros.planning import build_objectives

    model = tiny_model()
    assert "goal_distance" not in model.heads
    with pytest.raises(ValueError, match="goal_distance"):
        build_objectives({"reward": {"enabled": False}, "goal": {"enabled": True, "metric": "learned"}}).check(model)
    with pytest.raises(ValueError, match="moejepa-train goal"):
        model.goal_distance(torch.zeros(16), torch.zeros(16))


def test_refine_can_train_a_new_predictor_of_another_size(fitted, capsys):
    """refine.predictor: a fresh predictor of the given size on the frozen latents; the rest of the
    model is carried over bit-identical, and a field that is not the predictor's exits 2."""
    o, fit = fitted
    r = cli(
        capsys,
        "refine",
        o,
        "refine.steps=30",
        "refine.horizon=4",
        "refine.batch_size=16",
        "refine.predictor={expert_hidden: 48, num_experts: 2, top_k: 1}",
    )
    before, _ = load_checkpoint(fit)
    after, meta = plans_with(r["checkpoint"])
    assert (after.cfg.expert_hidden, after.cfg.num_experts, after.cfg.top_k) == (48, 2, 1)
    assert before.cfg.expert_hidden != 48
    sb, sa = before.state_dict(), after.state_dict()
    assert all(torch.equal(sb[k], sa[k]) for k in sb if not k.startswith("predictor."))
    assert meta["training"]["refine"]["predictor"] == {"expert_hidden": 48, "num_experts": 2, "top_k": 1}
    dense = cli(
        capsys,
        "refine",
        o,
        "refine.steps=10",
        "refine.horizon=4",
        "refine.batch_size=16",
        "refine.predictor={dense: true, expert_hidden: 40}",
        "run.resume=never",
    )  # the dense baseline on the same latents (the first refine's run is moved aside)
    d, _ = plans_with(dense["checkpoint"])
    assert d.cfg.dense and d.cfg.experts == 1 and d.predictor.moe.router is None
    assert "latent_dim" in refused(capsys, "refine", o, "refine.predictor={latent_dim: 8}")
    # resuming the dense run with another predictor is refused in one line that names the change
    err = refused(capsys, "refine", o, "refine.steps=10", "refine.horizon=4", "refine.predictor={expert_hidden: 24}")
    assert len(err.strip().splitlines()) == 1 and "refine.predictor:" in err and "run.resume=never" in err


def test_an_empty_mapping_override_clears_what_a_file_set():
    """two_rooms_goal sets refine.predictor (a new 4 x 512 predictor); `refine.predictor={}` on the
    command line must mean "keep the checkpoint's predictor", not merge into the file's mapping."""
    from training.config import load_config

    files = ["two_rooms", "two_rooms_goal"]
    assert load_config(files).refine.predictor == {"expert_hidden": 512}
    assert load_config(files, ["refine.predictor={}"]).refine.predictor == {}
    assert load_config(files, ["refine.predictor={top_k: 1}"]).refine.predictor == {"expert_hidden": 512, "top_k": 1}


ROBOT_RECIPES = {  # the README's robot recipe, and its preset
    "readme": [f"data.topics.{k}={'null' if v is None else v}" for k, v in README_TOPICS.items()],
    "preset": ["data.topics.preset=robot"],
}


@pytest.mark.parametrize("recipe", sorted(ROBOT_RECIPES))
def test_fit_on_a_robots_camera_and_cmd_vel_bag_records_the_time_step(tmp_path, capsys, recipe):
    _, truth = robot_bag(tmp_path / "bags" / "robot", lengths=(12, 10), dt_ms=50, topics=(CAMERA, CMD, ODOM))
    actions = np.concatenate([t["actions"] for t in truth])
    o = [f"run.out_dir={tmp_path / 'run'}", f"data.bags=[{tmp_path / 'bags'}]", "train.steps=2"]
    r = cli(capsys, "fit", *o, *ROBOT_RECIPES[recipe], "data.depth_range=[0.3,5]")
    meta = read_meta(r["checkpoint"])
    assert meta["preprocessing"]["time_step_s"] == 0.05 and meta["preprocessing"]["source_topic"] == CAMERA
    assert meta["preprocessing"]["depth_range"] == [0.3, 5.0]  # planner_node decodes depth with it
    assert meta["preprocessing"]["mono16_range"] == [0.0, 65535.0]
    assert meta["action_low"] == pytest.approx(actions.min(0)) and meta["action_high"] == pytest.approx(actions.max(0))
