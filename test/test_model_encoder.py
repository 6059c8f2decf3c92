"""Encoders (conv, ViT), bounded latents, frozen EMA target and its update formula."""

import math

import pytest
import torch

from moejepa_ros.model import ModelConfig, WorldModel, cosine_momentum, ema_update, make_encoder
from testing.models import small_config

torch.manual_seed(0)


def frames(lead, k, s=32):
    return torch.randint(0, 256, (*lead, k, s, s, 3), dtype=torch.uint8)


@pytest.mark.parametrize("encoder", ["conv", "vit"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("norm", ["simnorm", "layernorm"])
def test_encoder_shapes_dtypes_and_bound(encoder, k, norm):
    cfg = ModelConfig(
        image_size=32,
        frame_stack=k,
        encoder=encoder,
        latent_dim=64,
        latent_norm=norm,
        conv_channels=[8, 16, 16],
        vit_dim=32,
        vit_depth=1,
        vit_heads=2,
    )
    enc = make_encoder(cfg)
    z = enc(frames((2, 5), k))
    assert z.shape == (2, 5, 64) and z.dtype == torch.float32
    assert enc(frames((4,), k)).shape == (4, 64)
    if norm == "simnorm":
        g = z.reshape(2, 5, 8, 8)
        assert torch.allclose(g.sum(-1), torch.ones(2, 5, 8), atol=1e-5) and (g >= 0).all()
    else:
        assert torch.allclose(z.mean(-1), torch.zeros(2, 5), atol=1e-4)
    z.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_default_64px_conv_and_vit_cls():
    cfg = ModelConfig()
    assert make_encoder(cfg)(frames((2,), 3, 64)).shape == (2, 128)
    vit = make_encoder(ModelConfig(encoder="vit", vit_pool="cls", vit_depth=1))
    assert vit(frames((2,), 3, 64)).shape == (2, 128)


def test_conv_pool_max_reads_a_pattern_the_same_anywhere():
    """conv_pool=max: with the flattened map's weights zeroed, the latent of a pattern is the same wherever it is
    (moved by the convs' whole stride, 8 px, so the last map moves by one cell); without the pool it differs."""
    torch.manual_seed(1)
    kw = dict(image_size=64, frame_stack=1, conv_channels=[8, 8, 16], latent_dim=16, latent_norm="layernorm")
    enc = make_encoder(ModelConfig(conv_pool="max", **kw))
    n_flat = enc.proj.in_features - 16
    assert n_flat == 16 * 8 * 8
    with torch.no_grad():
        enc.proj.weight[:, :n_flat] = 0
    a, b = torch.zeros(2, 1, 64, 64, 3, dtype=torch.uint8)
    a[0, 16:24, 16:24] = 255
    b[0, 40:48, 24:32] = 255  # 3 cells down, 1 across
    assert torch.allclose(enc(a), enc(b), atol=1e-6)
    plain = make_encoder(ModelConfig(**kw))
    assert plain.proj.in_features == n_flat and not torch.allclose(plain(a), plain(b), atol=1e-2)
    with pytest.raises(ValueError, match="conv_pool"):
        ModelConfig(conv_pool="mean").validate()


def test_bad_frame_shape_names_expected_layout():
    enc = make_encoder(ModelConfig(image_size=32, conv_channels=[8, 8]))
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 32, 32, 3\]"):
        enc(torch.zeros(2, 3, 3, 32, 32, dtype=torch.uint8))


def test_conv_encoder_stacks_channels_oldest_frame_first():
    """The first conv sees frame j's RGB in channels 3j..3j+2, also from a window's strided stacks."""
    torch.manual_seed(0)
    enc = make_encoder(ModelConfig(image_size=32, conv_channels=[8, 8]))
    seen = []
    enc.convs[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    window = torch.randint(0, 256, (2, 5, 32, 32, 3), dtype=torch.uint8)
    stacks = window.unfold(1, 3, 1).permute(0, 1, 5, 2, 3, 4)  # [2, 3, 3, 32, 32, 3] views, as in training
    z = enc(stacks)
    x = seen[-1].reshape(2, 3, 9, 32, 32)  # [B, stack, channel, H, W]
    for s in range(3):
        for j in range(3):
            for c in range(3):
                want = window[:, s + j, :, :, c].float() / 255.0 - 0.5
                assert torch.allclose(x[:, s, 3 * j + c], want, atol=1e-6)
    assert torch.allclose(z, enc(stacks.contiguous()), atol=1e-6)


def small_wm():
    """`small_config` over 32x32 frames."""
    return WorldModel(small_config(image_size=32, conv_channels=[8, 16, 16]))


def test_no_gradient_reaches_target_encoder():
    wm = small_wm()
    B, T = 4, 5
    batch = {"frames": frames((B, T), 1, 32).squeeze(2), "actions": torch.randn(B, T, 2), "rewards": torch.randn(B, T)}
    for stage in (1, 2):
        wm.zero_grad(set_to_none=True)
        total, _ = wm.loss(batch, stage)
        total.backward()
        assert all(p.grad is None and not p.requires_grad for p in wm.target_encoder.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in wm.encoder.parameters())
    assert not wm.encode_target(frames((2,), 3)).requires_grad


def test_ema_matches_formula_and_cosine_schedule():
    wm = small_wm()
    with torch.no_grad():
        for p in wm.encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in wm.target_encoder.parameters()]
    online = [p.clone() for p in wm.encoder.parameters()]
    wm.update_target(0.9)
    for t0, o, t1 in zip(before, online, wm.target_encoder.parameters()):
        torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * o, rtol=1e-6, atol=1e-6)
    ema_update(wm.target_encoder, wm.encoder, 0.0)
    for o, t1 in zip(wm.encoder.parameters(), wm.target_encoder.parameters()):
        assert torch.equal(o, t1)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(wm.target_encoder, wm.encoder, 1.5)
    assert cosine_momentum(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert cosine_momentum(100, 100, 0.99, 1.0) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.99, 1.0) == pytest.approx(0.995)
    assert math.isclose(cosine_momentum(500, 100, 0.99, 1.0), 1.0)


# ------------------------------------------------------------------ conv_keypoints
def kp_cfg(**kw):
    base = dict(
        image_size=32,
        frame_stack=3,
        encoder="conv_keypoints",
        conv_channels=[8, 8],
        keypoints=4,
        keypoint_hidden=16,
        latent_dim=16,
        latent_norm="layernorm",
    )
    base.update(kw)
    return ModelConfig(**base)


def test_spatial_softmax_returns_the_peak_location():
    from moejepa_ros.model.encoder import spatial_softmax

    f = torch.zeros(2, 3, 9, 9)
    f[0, 0, 2, 6] = f[0, 1, 8, 0] = f[1, 2, 4, 4] = 5.0  # (row, col)
    kp = spatial_softmax(f, torch.full((3,), math.log(20.0))).reshape(2, 3, 2)
    lin = torch.linspace(-1, 1, 9)
    assert torch.allclose(kp[0, 0], torch.stack([lin[6], lin[2]]), atol=1e-3)  # (x=col, y=row)
    assert torch.allclose(kp[0, 1], torch.stack([lin[0], lin[8]]), atol=1e-3)
    assert torch.allclose(kp[1, 2], torch.zeros(2), atol=1e-3)
    assert torch.allclose(kp[1, 0], torch.zeros(2), atol=1e-6)  # flat map -> centre


def test_keypoint_encoder_shapes_bound_and_gradients():
    enc = make_encoder(kp_cfg())
    z = enc(frames((2, 5), 3))
    assert z.shape == (2, 5, 16) and torch.isfinite(z).all()
    assert torch.allclose(z.mean(-1), torch.zeros(2, 5), atol=1e-4)
    z.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    simn = make_encoder(kp_cfg(latent_norm="simnorm"))(frames((3,), 3)).reshape(3, 2, 8)
    assert torch.allclose(simn.sum(-1), torch.ones(3, 2), atol=1e-5)


def test_keypoint_encoder_bad_config_and_frames():
    with pytest.raises(ValueError, match="keypoints"):
        kp_cfg(keypoints=0).validate()
    with pytest.raises(ValueError, match="encoder"):
        ModelConfig(encoder="keypoint").validate()
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 32, 32, 3\]"):
        make_encoder(kp_cfg())(torch.zeros(2, 3, 3, 32, 32, dtype=torch.uint8))


def test_keypoint_encoder_tracks_a_small_dot_untrained():
    """The point of the architecture: even at random init the latent moves with a 1.3-px dot, far
    more than the flatten conv encoder's does relative to the wall layout (what PLDM probes)."""
    from moejepa_ros.sim.two_rooms import render_frame

    torch.manual_seed(0)
    cfg = kp_cfg(image_size=64, conv_channels=[16, 16], keypoints=16, latent_dim=32)
    enc = make_encoder(cfg).eval()
    rng = torch.Generator().manual_seed(1)
    pos = torch.rand(64, 2, generator=rng) * 20 + 5  # left room of a wall at x = 32
    st = torch.from_numpy(__import__("numpy").stack([[render_frame(p.tolist(), 32, 40)] * 3 for p in pos]))
    with torch.no_grad():
        kp, _ = enc.features(st)
    # some keypoint coordinate follows the dot's x and some its y almost linearly
    x = torch.cat([kp, torch.ones(len(kp), 1)], 1)
    sol = torch.linalg.lstsq(x, pos).solution
    resid = (x @ sol - pos).pow(2).sum(-1).mean()
    assert resid < 0.05 * pos.var(0).sum(), f"linear readout of the dot from keypoints: {resid:.2f} px²"


def test_keypoint_world_model_trains_and_round_trips(tmp_path):
    from moejepa_ros.model.checkpoint import load_checkpoint, save_checkpoint

    wm = WorldModel(kp_cfg(expert_hidden=16, head_hidden=16, stage1_hidden=16, action_embed_dim=4))
    B, T = 4, 5
    batch = {"frames": frames((B, T), 1, 32).squeeze(2), "actions": torch.randn(B, T, 2), "rewards": torch.randn(B, T)}
    total, _ = wm.loss(batch, 2)
    total.backward()
    p = tmp_path / "m.safetensors"
    save_checkpoint(p, wm, {})
    wm2, _ = load_checkpoint(p)
    x = frames((2,), 3)
    assert wm2.cfg.encoder == "conv_keypoints" and torch.allclose(wm.encode(x), wm2.encode(x))


@pytest.mark.parametrize("encoder", ["conv", "conv_keypoints", "vit"])
def test_encoding_in_chunks_matches_one_pass_on_a_window_view(encoder, monkeypatch):
    """A batch above encoder.CPU_CHUNK runs in chunks; the latents and the gradients are those of one pass,
    on the strided [B, H, k, S, S, 3] stacks a replay window unfolds into (the TD update's target encoder)."""
    from moejepa_ros.model import encoder as enc_mod

    cfg = ModelConfig(
        image_size=32,
        frame_stack=3,
        encoder=encoder,
        latent_dim=32,
        conv_channels=[8, 16],
        keypoints=4,
        vit_dim=32,
        vit_depth=1,
        vit_heads=2,
    )
    enc = make_encoder(cfg)
    window = torch.randint(0, 256, (5, 6, 32, 32, 3), dtype=torch.uint8)
    stacks = window.unfold(1, 3, 1).permute(0, 1, 5, 2, 3, 4)[:, 1:]  # [5, 3, 3, 32, 32, 3], strided
    monkeypatch.setattr(enc_mod, "CPU_CHUNK", 1 << 30)
    z_one = enc(stacks)
    (g_one,) = torch.autograd.grad(z_one.square().sum(), [next(enc.parameters())])
    monkeypatch.setattr(enc_mod, "CPU_CHUNK", 4)  # 4 // 3 stacks a window: one window per chunk
    passes, encode = [], enc._encode
    monkeypatch.setattr(enc, "_encode", lambda x: passes.append(len(x)) or encode(x))
    z_chunks = enc(stacks)
    assert passes == [3] * 5
    (g_chunks,) = torch.autograd.grad(z_chunks.square().sum(), [next(enc.parameters())])
    assert z_chunks.shape == (5, 3, 32)
    assert torch.allclose(z_chunks, z_one, atol=1e-5)
    assert torch.allclose(g_chunks, g_one, rtol=1e-4, atol=1e-5)
    monkeypatch.setattr(enc_mod, "CPU_CHUNK", 2)  # fewer stacks than a window holds: still one window a chunk
    assert torch.allclose(enc(stacks), z_one, atol=1e-5)
    assert enc(stacks[0, 0]).shape == (32,)  # one stack, no leading dims
    passes.clear()
    long = stacks.reshape(1, 15, 3, 32, 32, 3)  # one window of 15 stacks (above CPU_CHUNK = 2): chunked inside
    assert torch.allclose(enc(long), z_one.reshape(1, 15, 32), atol=1e-5) and passes == [2] * 7 + [1]
    assert enc(stacks[:0]).shape == (0, 3, 32)  # an empty batch
