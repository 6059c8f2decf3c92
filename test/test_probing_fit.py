"""The MLP probe fits to convergence: a probe that stops short measures itself, not the latent."""

import torch

from training.probing import fit_linear, fit_mlp, mse


def curved(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 4, generator=g) * 6 - 3
    y = torch.stack([torch.sin(x[:, 0]) * 3, x[:, 1].abs() * 2 + 0.5 * x[:, 2]], dim=1)
    return x, y


def test_mlp_probe_reads_a_nonlinear_target_that_a_linear_one_cannot():
    x, y = curved(1500, 0)
    xt, yt = curved(500, 1)
    var = float(yt.var(0).sum())
    mlp = mse(fit_mlp(x, y, epochs=1500, seed=0)(xt), yt)
    lin = mse(fit_linear(x, y)(xt), yt)
    assert mlp < 0.03 * var, (mlp, var)
    assert lin > 5 * mlp


def test_mlp_probe_is_deterministic_per_seed_and_handles_tiny_sets():
    x, y = curved(300, 2)
    a, b = fit_mlp(x, y, epochs=50, seed=3)(x), fit_mlp(x, y, epochs=50, seed=3)(x)
    assert torch.equal(a, b)
    small = fit_mlp(x[:8], y[:8], epochs=5)(x[:8])  # no hold-out below 20 frames: fits on all of them
    assert small.shape == (8, 2) and torch.isfinite(small).all()
