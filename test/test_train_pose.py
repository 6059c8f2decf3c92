"""`moejepa-train pose`: the relative-pose parts from a mobile base's bags (camera, /cmd_vel, /odom) after a tiny
fit / refine / goal; the motion model's training on known kinematics; the place net kept only where the drives'
odometry shares one frame; bags without odometry are refused."""

import json
import math
import os

import numpy as np
import pytest
import torch

from moejepa_ros.model import ModelConfig, WorldModel
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.model.config import RelativePoseConfig
from moejepa_ros.model.relative_pose import MotionModel, relative_pose, vector_to_pose
from testing.bags import CAMERA, CMD, robot_bag
from testing.models import SMALL
from training.cli import main
from training.config import PoseConfig
from training.pose import (
    Drives,
    choose_placement,
    held_out_pairs,
    train_motion,
    train_pair,
    train_place,
    with_free_space,
)

TINY_PARTS = ["pose.parts.channels=[8,8,8,8]", "pose.parts.hidden=16", "pose.parts.motion_hidden=32"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, command, *overrides) -> tuple[int, str, str]:
    rc = main([command, "-c", "tiny", *overrides])
    out = capsys.readouterr()
    return rc, out.out, out.err


def summary(capsys, command, *overrides) -> dict:
    rc, out, err = run(capsys, command, *overrides)
    assert rc == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_pose_after_fit_refine_goal_on_mobile_base_bags_adds_both_parts(tmp_path, capsys):
    o = [f"run.out_dir={tmp_path}", "data.topics.preset=robot", "collect.env=mobile_base"]
    summary(
        capsys,
        "collect",
        f"run.out_dir={tmp_path}",
        "collect.env=mobile_base",
        "collect.topics=robot",
        "collect.episodes=4",
        "collect.max_steps=40",
    )
    summary(capsys, "fit", *o, "train.steps=4")
    summary(capsys, "refine", *o, "refine.steps=4", "refine.horizon=4")
    goal = summary(capsys, "goal", *o, "goal.steps=4", "goal.embed_dim=8", "goal.hidden=16")["checkpoint"]
    r = summary(capsys, "pose", *o, *TINY_PARTS, "pose.steps=20", "pose.motion_steps=100", "pose.place_steps=0")
    assert r["source"] == goal and r["val_frames"] > 0
    assert {"pair", "motion"} == set(r["held_out"]) and "h24" in r["held_out"]["motion"]
    assert r["report"][0].startswith("pair: 0-0.05m xy ") and r["placement"].startswith(
        "goals placed by the pair net R"
    )
    before, _ = load_checkpoint(goal)
    after, meta = load_checkpoint(r["checkpoint"])
    assert {"goal_distance", "relative_pose"} <= set(after.heads)
    sb, sa = before.state_dict(), after.state_dict()
    assert all(torch.equal(sb[k], sa[k]) for k in sb)  # only the new parts moved
    assert {k.split(".")[0] for k in sa if k not in sb} == {"pose_net", "motion_model"}
    assert after.motion_model.action_low.tolist() == pytest.approx(meta["action_low"])
    assert after.cfg.relative_pose.channels == [8, 8, 8, 8] and meta["training"]["subcommand"] == "pose"
    e = summary(capsys, "export", f"run.out_dir={tmp_path}")
    assert e["source"].endswith(os.path.join("pose", "model.safetensors"))
    exported, _ = load_checkpoint(e["export"])
    assert exported.cfg.relative_pose == after.cfg.relative_pose
    img = torch.randint(0, 255, (1, 64, 64, 3), dtype=torch.uint8)
    assert torch.equal(exported.relative_pose(img, img), after.relative_pose(img, img))


def test_bags_without_odometry_are_refused_in_one_line_or_skipped(tmp_path, capsys):
    robot_bag(tmp_path / "bags" / "robot", lengths=(12, 10), dt_ms=50, topics=(CAMERA, CMD))
    o = [f"run.out_dir={tmp_path / 'run'}", f"data.bags=[{tmp_path / 'bags'}]", "data.topics.preset=robot"]
    summary(capsys, "fit", *o, "train.steps=2")
    rc, _, err = run(capsys, "pose", *o)
    assert rc == 2 and err.count("\n") == 1 and "the bags have no odometry" in err
    skipped = summary(capsys, "pose", *o, "pose.skip_without_odometry=true")
    assert "no odometry" in skipped["skipped"] and not (tmp_path / "run" / "pose" / "model.safetensors").exists()


def unicycle_drives(n_drives: int, length: int, dt: float, seed: int) -> Drives:
    """Random piecewise-constant (v, w) commands driven with exact unicycle kinematics (no frames)."""
    rng = np.random.default_rng(seed)
    actions, states = [], []
    for _ in range(n_drives):
        cmd = np.repeat(rng.uniform([-0.3, -1.5], [0.3, 1.5], (length // 6 + 1, 2)), 6, axis=0)[:length]
        s = np.zeros((length, 3))
        s[0] = rng.uniform([-1, -1, -math.pi], [1, 1, math.pi])
        for t in range(1, length):
            v, w = cmd[t - 1]
            x, y, p = s[t - 1]
            s[t] = (x + v * dt * math.cos(p), y + v * dt * math.sin(p), p + w * dt)
        actions.append(cmd), states.append(s)
    return Drives(
        torch.zeros(n_drives * length, 1, 1, 3, dtype=torch.uint8),
        torch.from_numpy(np.concatenate(actions)).float(),
        torch.from_numpy(np.concatenate(states)).float(),
        [length] * n_drives,
    )


def test_the_motion_model_learns_a_straight_drive_and_a_turn_from_known_kinematics():
    dt = 1 / 15
    parts = RelativePoseConfig()
    torch.manual_seed(0)
    mm = MotionModel(parts, 2)
    mm.action_low.copy_(torch.tensor([-0.3, -1.5]))
    mm.action_high.copy_(torch.tensor([0.3, 1.5]))
    pc = PoseConfig(motion_steps=1500)
    train_motion(mm, unicycle_drives(40, 120, dt, 0), pc, parts, torch.Generator().manual_seed(0), "cpu", print)
    rest = torch.zeros(1, 4, 2)
    with torch.no_grad():
        straight = vector_to_pose(mm(rest, torch.tensor([[0.2, 0.0]]).expand(1, 24, 2)), 0.3)[0]
        turn = vector_to_pose(mm(rest, torch.tensor([[0.0, 1.0]]).expand(1, 12, 2)), 0.3)[0]
    assert straight.tolist() == pytest.approx([0.2 * 24 * dt, 0.0, 0.0], abs=0.04)  # 0.32 m ahead
    assert turn.tolist() == pytest.approx([0.0, 0.0, 12 * dt], abs=0.06)  # 0.8 rad on the spot


def test_pairs_stay_within_one_drive_and_the_limits():
    pc = PoseConfig()
    a, b, r = unicycle_drives(20, 120, 1 / 15, 1).pairs(4000, pc, torch.Generator().manual_seed(0))
    assert torch.equal(a // 120, b // 120)  # one drive each: odometry is only consistent within one
    assert r[:, :2].norm(dim=-1).max() <= pc.max_distance and r[:, 2].abs().max() <= pc.max_turn
    near = (a - b).abs() <= pc.near_frames
    assert 0.35 < float(near.float().mean()) < 0.8  # 40% near by construction, and far draws that land near


def coloured_drives(frame: str, seed: int) -> Drives:
    """Unicycle drives whose 16 x 16 frames are colours that encode where they were taken in the room (left half
    x, y, cos ψ; right half sin ψ); odometry in the room's `frame` ("world") or each drive's own ("drive": every
    drive starts at zero, as a robot's odometry does after a restart)."""
    d = unicycle_drives(30, 60, 1 / 15, seed)
    world = d.states
    enc = torch.stack([(world[:, 0] + 4) / 8, (world[:, 1] + 4) / 8, (torch.cos(world[:, 2]) + 1) / 2], -1)
    frames = torch.zeros(len(world), 16, 16, 3)
    frames[:, :, :8] = enc[:, None, None]
    frames[:, :, 8:, 0] = ((torch.sin(world[:, 2]) + 1) / 2)[:, None, None]
    states = world
    if frame == "drive":
        first = world[d.start].repeat_interleave(d.len, 0)
        states = relative_pose(first, world)
    return Drives((frames * 255).round().to(torch.uint8), d.actions, states, d.len.tolist())


@pytest.mark.parametrize("frame", ["world", "drive"])
def test_the_place_net_is_kept_only_where_the_drives_odometry_shares_one_frame(frame):
    torch.manual_seed(0)
    parts = {"channels": [16, 32], "hidden": 64, "motion_hidden": 16, "place": True}
    model = WorldModel(ModelConfig(**SMALL, relative_pose=parts)).eval()
    pc = PoseConfig(steps=600, place_steps=600, batch_size=64, lr=3e-3)
    train, val = coloured_drives(frame, 0), coloured_drives(frame, 1)
    gen = torch.Generator().manual_seed(0)
    train_pair(model.pose_net, train, pc, 0.3, gen, "cpu", lambda *_: None)
    train_place(model.place_net, train, pc, 0.3, gen, "cpu", lambda *_: None)
    pairs = held_out_pairs(model, val, pc, "cpu", seed=2)
    keep, why = choose_placement(pairs)
    far_r, far_l = pairs["pair"]["far_xy_median"], pairs["place"]["far_xy_median"]
    if frame == "world":  # a frame says where it was taken: L places it, and better than R
        assert keep and why.startswith("goals placed by the place net L") and far_l < 0.1
    else:  # the same view has a different label in every drive: L cannot learn it, R still can
        assert not keep and "own frame" in why and far_l > far_r


def test_with_free_space_carries_every_tensor_over_and_maps_where_the_drives_went():
    parts = {"channels": [16, 32], "hidden": 64, "motion_hidden": 16, "place": True}
    model = WorldModel(ModelConfig(**SMALL, relative_pose=parts)).eval()
    xy = coloured_drives("world", 0).states[:, :2]
    out = with_free_space(model, xy, 0.1, "cpu")
    state = out.state_dict()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    grid, origin, res = out.free_space.numpy()
    assert out.cfg.relative_pose.free_space == list(grid.shape) and res == pytest.approx(0.1)
    cells = np.floor((xy.numpy() - origin) / res).astype(int)
    assert grid[cells[:, 1], cells[:, 0]].all() and not grid.all()  # every position free; the margin is not
