"""TD-MPC2's two-hot regression of reward and Q (moejepa_ros/model/two_hot.py, `model.reward_bins`)."""

import numpy as np
import pytest
import torch

from moejepa_ros.model import ModelConfig, WorldModel
from moejepa_ros.model.checkpoint import load_checkpoint, save_checkpoint
from moejepa_ros.model.two_hot import Regression, symexp, symlog
from testing.models import SMALL
from training.replay import EpisodeReplay
from training.td import TDLearner

TARGETS = torch.tensor([-3000.0, -1.0, 0.0, 0.3, 7.9, 200.0])


def test_two_hot_puts_the_target_on_its_two_nearest_points_and_decodes_back():
    reg = Regression(101)
    p = reg.two_hot(TARGETS)
    assert p.shape == (6, 101)
    assert torch.all(p >= 0) and torch.allclose(p.sum(-1), torch.ones(6))
    assert torch.all((p > 0).sum(-1) <= 2)
    nz = [torch.nonzero(row).flatten().tolist() for row in p]
    assert all(len(i) == 1 or i[1] == i[0] + 1 for i in nz)  # neighbours
    torch.testing.assert_close(reg.decode(torch.log(p)), TARGETS, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(symexp(symlog(TARGETS)), TARGETS)
    far = reg.two_hot(torch.tensor([1e9, -1e9]))  # beyond e^10: clamped to the end points
    assert far[0, -1] == 1 and far[1, 0] == 1


def test_decode_in_the_planner_then_in_training_keeps_the_gradient():
    """The points are cached on the first decode; a first decode under inference mode (the planner's) must not
    leave an inference tensor that autograd then refuses to save."""
    reg = Regression(11)
    with torch.inference_mode():
        planned = reg.decode(torch.zeros(4, 11))
    torch.testing.assert_close(planned, torch.zeros(4))
    raw = torch.zeros(4, 11, requires_grad=True)
    reg.decode(raw).sum().backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
    assert reg.points(raw) is reg.points(raw.detach())


def test_cross_entropy_is_least_at_the_target_and_its_gradient_does_not_grow_with_the_return():
    reg = Regression(101)
    raw = torch.zeros(2, 101, requires_grad=True)
    y = torch.tensor([5.0, 500.0])
    opt = torch.optim.Adam([raw], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        reg.loss(raw, y).sum().backward()
        opt.step()
    torch.testing.assert_close(symlog(reg.decode(raw.detach())), symlog(y), rtol=0, atol=0.05)
    grads = []
    for target in (1.0, 1000.0):  # from the same (uniform) prediction: the gradient norm is at most sqrt(2)
        r = torch.zeros(101, requires_grad=True)
        reg.loss(r, torch.tensor(target)).backward()
        grads.append(float(r.grad.norm()))
    assert max(grads) <= 2**0.5
    scalar = Regression(0)  # squared error: the gradient grows with the target
    g = []
    for target in (1.0, 1000.0):
        r = torch.zeros(1, requires_grad=True)
        scalar.loss(r, torch.tensor(target)).backward()
        g.append(float(r.grad.abs()))
    assert g[1] / g[0] == 1000.0


def test_scalar_heads_are_the_default_and_two_hot_heads_start_at_zero():
    base = ModelConfig(**{**SMALL, "action_dim": 1, "num_q": 2})
    assert base.reward_bins == 0
    m0 = WorldModel(base)
    z, a = torch.randn(5, base.latent_dim), torch.rand(5, 1)
    r = torch.randn(5)
    torch.testing.assert_close(m0.reward_head.loss(z, a, r), (m0.reward(z, a) - r).square())
    mc = ModelConfig(**{**SMALL, "action_dim": 1, "num_q": 2, "reward_bins": 101})
    m = WorldModel(mc)
    assert m.reward_head.net[-1].out_features == 101 and m.q_heads.members[0][-1].out_features == 101
    with torch.no_grad():
        r_hat, q_hat = m.reward(z, a), m.q(z, a)
    assert r_hat.shape == (5,) and q_hat.shape == (2, 5)
    assert float(r_hat.abs().max()) < 1e-5 and float(q_hat.abs().max()) < 1e-5
    with pytest.raises(ValueError, match="reward_bins=2"):
        ModelConfig(**{**SMALL, "reward_bins": 2}).validate()


def test_td_updates_fit_two_hot_rewards_and_the_checkpoint_keeps_the_bins(tmp_path):
    torch.manual_seed(0)
    mc = ModelConfig(**{**SMALL, "action_dim": 1, "num_q": 2, "reward_bins": 51})
    model = WorldModel(mc)
    replay = EpisodeReplay(str(tmp_path / "ep"), mc.frame_stack, horizon=3, augment_shift=0)
    rng = np.random.default_rng(0)
    for _ in range(2):  # rewards summed over a repeat of 8: up to 8 per step
        replay.add(rng.integers(0, 255, (9, 16, 16, 3), dtype=np.uint8), rng.uniform(-1, 1, (8, 1)), 8 * rng.random(8))
    learner = TDLearner(model, [-1.0], [1.0], gamma=0.9, lr=3e-3)
    batch = replay.sample(8, rng)
    first = learner.update(batch)
    for _ in range(60):
        last = learner.update(batch)
    assert np.isfinite(last["q"]) and last["reward"] < 0.5 * first["reward"]
    stacks, actions, rewards, _ = model._split_window(batch)
    with torch.no_grad():
        pred = model.reward(model.encode(stacks[:, 0]), actions[:, 0])
    assert float((pred - rewards[:, 0]).abs().mean()) < float((rewards[:, 0] - rewards[:, 0].mean()).abs().mean())
    assert learner.last_priority.shape == (8,) and np.all(np.isfinite(learner.last_priority))
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    back, _ = load_checkpoint(path)
    assert back.cfg.reward_bins == 51
    z = torch.randn(3, mc.latent_dim)
    torch.testing.assert_close(back.q(z, torch.zeros(3, 1)), model.q(z, torch.zeros(3, 1)))
