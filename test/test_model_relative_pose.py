"""model.relative_pose: pose arithmetic, the pair pose net and motion model as model parts (shapes, config,
checkpoint round trip)."""

import math

import pytest
import torch

from moejepa_ros.model import ModelConfig, load_checkpoint, save_checkpoint
from moejepa_ros.model.relative_pose import pose_to_vector, relative_pose, vector_to_pose
from testing.models import tiny_config, tiny_model

SMALL_PARTS = {"channels": [8, 8, 8, 8], "hidden": 16, "motion_hidden": 16}


def test_relative_pose_puts_b_in_as_frame_and_the_vector_round_trips():
    a = torch.tensor([1.0, 2.0, math.pi / 2])  # facing +y
    b = torch.tensor([1.0, 3.0, -3.0])  # 1 m ahead of a
    r = relative_pose(a, b)
    assert r[:2].tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert float(r[2]) == pytest.approx(-3.0 - math.pi / 2 + 2 * math.pi, abs=1e-6)  # wrapped into (-pi, pi]
    poses = torch.tensor([[0.3, -0.2, 3.1], [0.0, 0.0, -3.1], [1.0, 0.5, 0.0]])
    assert torch.allclose(vector_to_pose(pose_to_vector(poses, 0.3), 0.3), poses, atol=1e-5)
    assert pose_to_vector(torch.zeros(3), 0.3).abs().max() == 0  # the identity is the zero vector


def test_the_parts_plan_shapes_and_survive_a_checkpoint(tmp_path):
    model = tiny_model(relative_pose=SMALL_PARTS)
    assert "relative_pose" in model.heads and "relative_pose" not in tiny_model().heads
    img = torch.randint(0, 255, (5, 64, 64, 3), dtype=torch.uint8)
    pose = model.relative_pose(img, img.flip(0))
    moved = model.motion(torch.zeros(1, 4, 2), torch.rand(7, 24, 2))
    assert pose.shape == (5, 3) and moved.shape == (7, 3) and pose[:, 2].abs().max() <= math.pi
    model.motion_model.action_high.fill_(2.0)
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"action_low": [-1, -1], "action_high": [1, 1]})
    back, _ = load_checkpoint(path)
    assert back.cfg.relative_pose == model.cfg.relative_pose
    assert torch.equal(
        back.motion(torch.zeros(1, 4, 2), torch.ones(2, 5, 2)), model.motion(torch.zeros(1, 4, 2), torch.ones(2, 5, 2))
    )
    assert back.motion_model.action_high.tolist() == [2.0, 2.0]  # the training bounds travel with the part


def test_bad_part_settings_and_missing_parts_name_themselves():
    with pytest.raises(ValueError, match=r"relative_pose\.horizon=0"):
        tiny_config(relative_pose={"horizon": 0}).validate()
    with pytest.raises(ValueError, match=r"relative_pose: unknown field\(s\) \['width'\]"):
        ModelConfig(relative_pose={"width": 3})
    with pytest.raises(ValueError, match=r"relative_pose\.channels=\[8, 8, 8, 8, 8, 8, 8\]"):
        tiny_config(relative_pose={"channels": [8] * 7}).validate()
    with pytest.raises(ValueError, match="moejepa-train pose"):
        tiny_model().relative_pose(torch.zeros(1, 64, 64, 3), torch.zeros(1, 64, 64, 3))
    with pytest.raises(ValueError, match=r"1\.\.24 commands"):
        tiny_model(relative_pose=SMALL_PARTS).motion(torch.zeros(1, 4, 2), torch.zeros(1, 25, 2))


def test_with_a_place_net_goals_are_placed_by_it_and_it_survives_a_checkpoint(tmp_path):
    model = tiny_model(relative_pose={**SMALL_PARTS, "place": True})
    img = torch.randint(0, 255, (4, 64, 64, 3), dtype=torch.uint8)
    goal = img.flip(0)
    assert torch.equal(model.relative_pose(img, goal), relative_pose(model.place(img), model.place(goal)))
    assert model.relative_pose(img, img).abs().max() == 0  # a goal image taken here is here, whatever L says
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"action_low": [-1, -1], "action_high": [1, 1]})
    back, _ = load_checkpoint(path)
    assert back.cfg.relative_pose.place and torch.equal(back.place(img), model.place(img))
    with pytest.raises(ValueError, match="no place net"):
        tiny_model(relative_pose=SMALL_PARTS).place(img)
    with pytest.raises(ValueError, match=r"relative_pose\.place=1"):
        tiny_config(relative_pose={"place": 1}).validate()
