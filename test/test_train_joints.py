"""`moejepa-train joints`: an arm's joint-angle probe from the reacher's bags (camera, /joint_commands,
/joint_states) after a tiny fit; only the probe moves, export carries it, and the goal metric `joints`
plans with it; bags without state are refused in one line."""

import json
import math
import os

import pytest
import torch

from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.model.joint_probe import JointProbe, angle_error
from moejepa_ros.planning.objectives import build_objectives
from moejepa_ros.planning.objectives.rollout import Rollout
from testing.bags import CAMERA, CMD, robot_bag
from training.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def summary(capsys, command, *overrides) -> dict:
    rc = main([command, "-c", "tiny", *overrides])
    out = capsys.readouterr()
    assert rc == 0, out.err[-2000:]
    return json.loads(out.out.strip().splitlines()[-1])


def test_angle_error_wraps_and_the_probe_reads_angles():
    a, b = torch.tensor([math.pi - 0.01, 0.5]), torch.tensor([-math.pi + 0.01, 0.2])
    assert torch.allclose(angle_error(a, b), torch.tensor([0.02, 0.3]), atol=1e-5)
    p = JointProbe(8, 2, 16)
    q = p(torch.randn(5, 8))
    assert q.shape == (5, 2) and bool((q.abs() <= math.pi).all())


def test_joints_after_fit_on_reacher_bags_adds_the_probe_and_plans_with_it(tmp_path, capsys):
    o = [f"run.out_dir={tmp_path}", "data.topics.preset=arm", "collect.env=dmc:reacher", "data.val_episodes=1"]
    summary(
        capsys,
        "collect",
        f"run.out_dir={tmp_path}",
        "collect.env=dmc:reacher",
        "collect.topics=arm",
        "collect.episodes=3",
        "collect.max_steps=20",
    )
    fit = summary(capsys, "fit", *o, "train.steps=4")["checkpoint"]
    r = summary(capsys, "joints", *o, "joints.steps=30", "joints.hidden=16", "joints.imagine_steps=8")
    assert r["source"] == fit
    assert {"recorded", "static", "imagined_1", "imagined_8"} == set(r["held_out"])
    assert r["line"].startswith("joints held-out angle error")
    before, _ = load_checkpoint(fit)
    after, meta = load_checkpoint(r["checkpoint"])
    assert "joint_angles" in after.heads and after.cfg.joint_probe == 2
    sb, sa = before.state_dict(), after.state_dict()
    assert all(torch.equal(sb[k], sa[k]) for k in sb)  # only the probe moved
    assert {k.split(".")[0] for k in sa if k not in sb} == {"joint_probe"}
    e = summary(capsys, "export", f"run.out_dir={tmp_path}")
    assert e["source"].endswith(os.path.join("joints", "model.safetensors"))
    exported, _ = load_checkpoint(e["export"])
    z = torch.randn(4, after.latent_dim)
    assert torch.equal(exported.joint_angles(z), after.joint_angles(z))
    # the goal metric `joints`: zero at the goal's own latent, and it scores the probe's angles
    goal = build_objectives({"goal": {"enabled": True, "metric": "joints"}})["goal"]
    goal.check(exported)
    with torch.no_grad():
        lat = torch.stack([z, z[:1].expand(4, -1)], 1)  # [4, 2, D]: the last step is z[0] for every sample
        r0 = Rollout(exported, z[0], lat, torch.zeros(4, 2, 2), torch.ones(2), goal_z=z[0])
        assert torch.allclose(goal(r0), torch.zeros(4), atol=1e-6)
        err = angle_error(exported.joint_angles(z), exported.joint_angles(z[0]))
        assert torch.allclose(goal.distance(z, z[0], exported), (err / 0.05).pow(2).sum(-1))
    # a model without the probe is refused with the command that trains it
    with pytest.raises(ValueError, match="moejepa-train joints"):
        goal.check(before)


def test_bags_without_state_are_refused_in_one_line(tmp_path, capsys):
    robot_bag(tmp_path / "bags" / "robot", lengths=(12, 10), dt_ms=50, topics=(CAMERA, CMD))
    o = [f"run.out_dir={tmp_path / 'run'}", f"data.bags=[{tmp_path / 'bags'}]", "data.topics.preset=robot"]
    summary(capsys, "fit", *o, "train.steps=2")
    rc = main(["joints", "-c", "tiny", *o])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "record /joint_states" in err
