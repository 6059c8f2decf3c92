"""Training-side inverse dynamics: one-step and multi-step targets, gradients into the encoder, bad horizons."""

import pytest
import torch

from moejepa_ros.model import WorldModel
from testing.models import small_config
from training.aux_losses import AuxLosses
from training.config import ConfigError, load_config


def batch(T: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    B = 6
    return {
        "frames": torch.randint(0, 256, (B, T, 16, 16, 3), generator=g, dtype=torch.uint8),
        "actions": torch.randn(B, T, 2, generator=g),
        "rewards": torch.randn(B, T, generator=g),
    }


def zero_head(aux: AuxLosses) -> None:
    with torch.no_grad():
        aux.idm.net[-1].weight.zero_()
        aux.idm.net[-1].bias.zero_()


@pytest.fixture
def model():
    torch.manual_seed(0)
    return WorldModel(small_config(frame_stack=2))


def test_one_step_target_is_the_first_action(model):
    aux = AuxLosses(32, 2, 2, idm_weight=1.0, action_scale=2.0)
    zero_head(aux)
    b = batch(T=5)
    a = b["actions"][:, 1] / 2.0  # frame_stack 2: the stack ending at frame 1 acts with actions[:, 1]
    assert aux.inverse_dynamics(model, b)[0].item() == pytest.approx(a.square().mean().item(), rel=1e-5)


def test_multi_step_target_is_the_mean_action_over_each_offset(model):
    aux = AuxLosses(32, 2, 2, idm_weight=1.0, idm_horizon=3)
    zero_head(aux)
    b = batch(T=5)
    acts = b["actions"][:, 1:4]
    means = torch.stack([acts[:, :j].mean(1) for j in (1, 2, 3)], 1)
    assert aux.inverse_dynamics(model, b)[0].item() == pytest.approx(means.square().mean().item(), rel=1e-5)


def test_multi_step_loss_trains_the_encoder_through_every_offset(model):
    aux = AuxLosses(32, 2, 2, idm_weight=1.0, idm_horizon=3)
    b = batch(T=5)
    total, terms = aux.loss(model, b, stage=2)
    total.backward()
    assert "idm" in terms and torch.isfinite(terms["total"])
    enc_grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert enc_grads and any(g.abs().sum() > 0 for g in enc_grads)
    assert aux.idm.net[0].weight.shape[1] == 2 * 32 + 1  # (z_t, z_t+j, j/K)
    # the offset feeds the head: the same pair of latents gets a different answer at another j
    z = torch.randn(1, 32)
    assert not torch.allclose(aux.idm(z, z, torch.tensor([[1 / 3]])), aux.idm(z, z, torch.tensor([[1.0]])))


def test_window_shorter_than_the_horizon_is_a_clear_error(model):
    aux = AuxLosses(32, 2, 2, idm_weight=1.0, idm_horizon=4)
    with pytest.raises(ValueError, match="idm_horizon=4.*data.horizon"):
        aux.inverse_dynamics(model, batch(T=5))
    with pytest.raises(ValueError, match="idm_horizon"):
        AuxLosses(32, 2, 2, idm_weight=1.0, idm_horizon=0)


def test_config_rejects_a_horizon_beyond_the_windows():
    assert load_config(["tiny"], ["fit.idm_horizon=3"]).fit.idm_horizon == 3
    with pytest.raises(ConfigError, match="fit.idm_horizon"):
        load_config(["tiny"], ["fit.idm_horizon=4"])  # tiny's data.horizon is 3


def test_idm_ratio_is_one_for_a_head_that_predicts_the_batch_mean(model):
    aux = AuxLosses(32, 2, 2, idm_weight=1.0, idm_horizon=3)
    b = batch(T=5)
    acts = b["actions"][:, 1:4]
    means = torch.stack([acts[:, :j].mean(1) for j in (1, 2, 3)], 1)
    with torch.no_grad():
        aux.idm.net[-1].weight.zero_()
        aux.idm.net[-1].bias.copy_(means.reshape(-1, 2).mean(0))  # chance: the mean over batch and offsets
    _, terms = aux.loss(model, b, stage=2)
    chance = (means - means.mean(0, keepdim=True)).square().mean()
    assert float(terms["idm_ratio"]) == pytest.approx(float(terms["idm"]) / float(chance), rel=1e-5)
    assert float(terms["idm_ratio"]) >= 1.0  # one bias for all offsets cannot beat each offset's own mean


def test_reach_regresses_steps_and_pushes_other_frames_away(model):
    from training.aux_losses import Reach

    torch.manual_seed(0)
    head = Reach(32, reach=10, expectile=0.25)
    z, g = torch.randn(8, 32), torch.randn(8, 32)
    steps = torch.arange(8, dtype=torch.float32)
    loss = head.loss(z, g, steps)
    d, far = head(z, g), head(z, g.roll(1, 0))
    e = steps / 10 - d
    w = torch.where(e < 0, 0.75, 0.25)
    want = (w * e.square()).mean() + torch.relu(1 - far).square().mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    # with fit.reach_weight the loss reaches the encoder through both the window and the far frame
    aux = AuxLosses(32, 2, 2, reach=10, reach_weight=1.0)
    b = batch(T=4)
    b["far_frames"] = b["frames"][:, -1].clone()
    b["far_steps"] = torch.full((6,), 2.0)
    total, terms = aux.loss(model, b, 2)
    total.backward()
    assert (
        "reach" in terms and model.encoder.net[0].weight.grad.abs().sum() > 0 if hasattr(model.encoder, "net") else True
    )
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in aux.reach.parameters())
