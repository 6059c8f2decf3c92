"""A tiny synthetic video-with-actions task (a blob whose velocity is the action): the world
model must learn to predict latents better than 'nothing moves', without collapsing."""

import pytest
import torch

from moejepa_ros.model import WorldModel
from testing.models import small_config


def blob_batch(B, T, s=16, gen=None):
    """Gaussian blob at p; p_{t+1} = clip(p + (s/10)·a_t); reward = −distance to the centre."""
    p = torch.rand(B, 2, generator=gen) * (s - 6) + 3
    a = torch.rand(B, T, 2, generator=gen) * 2 - 1
    ys, xs = torch.meshgrid(torch.arange(s).float(), torch.arange(s).float(), indexing="ij")
    frames, rewards = [], []
    for t in range(T):
        d2 = (xs - p[:, 0, None, None]) ** 2 + (ys - p[:, 1, None, None]) ** 2
        frames.append((torch.exp(-d2 / (2 * (s / 12) ** 2)) * 255).to(torch.uint8))
        rewards.append(-(p - s / 2).norm(dim=-1) / s)
        p = (p + (s / 10) * a[:, t]).clamp(2, s - 2)
    f = torch.stack(frames, 1)[..., None].expand(B, T, s, s, 3).contiguous()
    return {"frames": f, "actions": a, "rewards": torch.stack(rewards, 1)}


def errors(wm, batch):
    """(prediction MSE, 'copy z0' baseline MSE, prediction MSE / per-dim target variance, z std)."""
    with torch.no_grad():
        stacks, actions, _, _ = wm._split_window(batch)
        z0, tgt = wm.encode(stacks[:, 0]), wm.encode(stacks[:, 1:])
        pred = wm.rollout(z0, actions)
        mse = (pred - tgt).square().mean().item()
        copy = (z0[:, None] - tgt).square().mean().item()
        var = tgt.reshape(-1, tgt.shape[-1]).var(0).mean().item()
        return mse, copy, mse / var, z0.std(0).mean().item()


@pytest.mark.parametrize("norm", ["simnorm", "layernorm"])
def test_blob_world_model_learns_without_collapse(norm, one_thread):
    torch.manual_seed(0)
    cfg = small_config(frame_stack=1, conv_channels=[16, 32], latent_norm=norm, ema_momentum=0.95)
    wm = WorldModel(cfg)
    opt = torch.optim.Adam(wm.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    held_out = blob_batch(128, 4, gen=torch.Generator().manual_seed(123))
    _, _, rel0, _ = errors(wm.eval(), held_out)
    wm.train()
    for _ in range(400):
        total, terms = wm.loss(blob_batch(32, 4, gen=gen), stage=2)
        opt.zero_grad()
        total.backward()
        opt.step()
        wm.update_target()
        assert torch.isfinite(total)
    mse, copy, rel, z_std = errors(wm.eval(), held_out)
    assert rel < 0.5 * rel0, (rel, rel0)  # relative latent error clearly lower
    assert mse < 0.75 * copy, (mse, copy)  # uses the action: beats 'the blob stays put'
    assert z_std > 0.5 * cfg.losses.std_target(norm), z_std  # per-dim std: no collapse
    load = wm.routing_stats()["load"]
    assert load.max() < 0.95  # the router did not put everything on one expert
