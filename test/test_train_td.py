"""TD learning of the Q ensemble and the actor (training/td.py) and the replay it samples (training/replay.py)."""

import numpy as np
import pytest
import torch

from moejepa_ros.model import ModelConfig, WorldModel
from testing.models import SMALL
from training.replay import EpisodeReplay, random_rotate
from training.td import TDLearner, pessimistic, td_targets


def test_n_step_targets_on_a_hand_made_batch():
    r = torch.tensor([[1.0, 2.0, 3.0]])
    boot = torch.tensor([[10.0, 20.0, 30.0]])  # values of z_1, z_2, z_3
    g = 0.5
    torch.testing.assert_close(td_targets(r, boot, g, 1), torch.tensor([[1 + g * 10, 2 + g * 20, 3 + g * 30]]))
    torch.testing.assert_close(
        td_targets(r, boot, g, 2), torch.tensor([[1 + g * 2 + g * g * 20, 2 + g * 3 + g * g * 30]])
    )
    torch.testing.assert_close(td_targets(r, boot, g, 3), torch.tensor([[1 + g * 2 + g * g * 3 + g**3 * 30]]))
    with pytest.raises(ValueError, match="n=4"):
        td_targets(r, boot, g, 4)


def test_per_window_latent_loss_is_the_batch_loss_window_by_window():
    from moejepa_ros.model import losses as L

    pred = torch.zeros(2, 2, 3)
    tgt = torch.zeros(2, 2, 3)
    tgt[0, 0] = 1.0  # window 0 misses step 1 by 1 in every dim, window 1 misses step 2 by 2
    tgt[1, 1] = 2.0
    per = L.multistep_latent_loss(pred, tgt, rho=0.5, per_window=True)
    w = torch.tensor([2 / 3, 1 / 3])  # rho^(j-1) normalised
    assert torch.allclose(per, torch.stack([w[0] * 1.0, w[1] * 4.0]))
    assert torch.allclose(per.mean(), L.multistep_latent_loss(pred, tgt, rho=0.5))


def test_pessimistic_takes_the_min_of_two_members_or_the_mean():
    q = torch.tensor([[1.0], [5.0], [3.0]])
    gen = torch.Generator().manual_seed(0)
    mins = {float(pessimistic(q, "min2", gen)) for _ in range(50)}
    assert mins == {1.0, 3.0}  # min of a random pair: 5 is never the smaller one
    assert float(pessimistic(q, "mean")) == 3.0


def _setup(tmp_path, **losses):
    mc = ModelConfig(**{**SMALL, "action_dim": 1, "num_q": 2, "losses": losses})
    model = WorldModel(mc)
    replay = EpisodeReplay(str(tmp_path), mc.frame_stack, horizon=3, augment_shift=1)
    rng = np.random.default_rng(0)
    for _ in range(2):
        replay.add(rng.integers(0, 255, (9, 16, 16, 3), dtype=np.uint8), rng.uniform(-1, 1, (8, 1)), rng.random(8))
    return model, replay, rng


def test_an_update_moves_the_target_q_by_ema_and_trains_the_encoder_through_q(tmp_path):
    model, replay, rng = _setup(tmp_path, latent=0.0, reward=0.0, load_balance=0.0, router_z=0.0)
    learner = TDLearner(model, [-1.0], [1.0], gamma=0.9, tau=0.25)
    old_target = {k: v.clone() for k, v in learner.target_q.state_dict().items()}
    enc = [p.clone() for p in model.encoder.parameters()]
    actor = [p.clone() for p in model.actor_head.parameters()]
    terms = learner.update(replay.sample(4, rng))
    assert np.isfinite(terms["q"]) and terms["q"] > 0
    online = model.q_heads.state_dict()
    for k, old in old_target.items():  # target = 0.75 old + 0.25 new online
        torch.testing.assert_close(learner.target_q.state_dict()[k], 0.75 * old + 0.25 * online[k])
    # only the Q loss is on: the encoder still moves, so it is trained through the value
    assert any(not torch.equal(a, b) for a, b in zip(enc, model.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(actor, model.actor_head.parameters()))
    assert not model.training  # back in eval mode for the planner


def test_learner_state_round_trips(tmp_path):
    model, replay, rng = _setup(tmp_path)
    learner = TDLearner(model, [-1.0], [1.0], gamma=0.9)
    learner.update(replay.sample(4, rng))
    js, tensors = learner.state()
    other = TDLearner(model, [-1.0], [1.0], gamma=0.9)
    other.load_state(js, tensors)
    assert other.updates == 1
    for k, v in learner.target_q.state_dict().items():
        torch.testing.assert_close(other.target_q.state_dict()[k], v)
    assert other.opt.state_dict()["state"][0]["step"] == learner.opt.state_dict()["state"][0]["step"]


def test_inverse_dynamics_term_trains_encoder_and_head_and_resumes(tmp_path):
    # every other loss off: only inverse dynamics (and the Q loss, weight 0) reaches the encoder
    model, replay, rng = _setup(tmp_path, latent=0.0, reward=0.0, value=0.0, load_balance=0.0, router_z=0.0)
    learner = TDLearner(model, [-2.0], [2.0], gamma=0.9, idm_weight=1.0)
    batch = replay.sample(4, rng)
    out = learner.losses(batch)
    stacks, actions, _, _ = model._split_window(batch)
    with torch.no_grad():  # the term by hand: MSE of the head on (z_0, z_1) against a_0 / 2 (the half-range)
        want = (learner.idm(model.encode(stacks[:, 0]), model.encode(stacks[:, 1])) - actions[:, 0] / 2).square()
    torch.testing.assert_close(out["terms"]["idm"].detach(), want.mean(-1))
    assert out["weights"]["idm"] == 1.0
    enc = [p.clone() for p in model.encoder.parameters()]
    head = [p.clone() for p in learner.idm.parameters()]
    logged = learner.update(batch)
    assert logged["idm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(enc, model.encoder.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(head, learner.idm.parameters()))
    js, tensors = learner.state()
    other = TDLearner(model, [-2.0], [2.0], gamma=0.9, idm_weight=1.0)
    other.load_state(js, tensors)
    for k, v in learner.idm.state_dict().items():
        torch.testing.assert_close(other.idm.state_dict()[k], v)
    assert "idm" not in TDLearner(model, [-2.0], [2.0], gamma=0.9).losses(batch)["terms"]  # off by default
    with pytest.raises(ValueError, match="idm_weight=-1"):
        TDLearner(model, [-2.0], [2.0], gamma=0.9, idm_weight=-1)


def test_replay_windows_follow_the_model_layout_and_reload(tmp_path):
    replay = EpisodeReplay(str(tmp_path), frame_stack=3, horizon=2)
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 4, 4, 3), np.uint8)  # frame i = i
    replay.add(frames, np.arange(4, dtype=np.float32)[:, None], np.arange(4, dtype=np.float32) * 10)
    rng = np.random.default_rng(0)
    b = replay.sample(64, rng)
    assert b["frames"].shape == (64, 5, 4, 4, 3)
    first = b["frames"][:, :, 0, 0, 0]
    t = first[:, 2].long()  # the stack at step t ends with frame t; earlier ones repeat the first frame
    torch.testing.assert_close(first[:, 0].long(), (t - 2).clamp(min=0))
    torch.testing.assert_close(b["actions"][:, 2, 0], t.float())  # action t is taken from the stack ending at t
    torch.testing.assert_close(b["rewards"][:, 3], 10 * (t.float() + 1))
    assert set(t.tolist()) == {0, 1, 2}  # windows of 2 steps in a 4-step episode
    again = EpisodeReplay(str(tmp_path), frame_stack=3, horizon=2)
    again.load(1)
    assert again.steps == 4 and np.array_equal(again.frames[0], replay.frames[0])


def test_rotation_turns_each_window_about_the_image_centre_by_one_angle(tmp_path):
    """augment_rotate: every frame of a window turns by the same angle (drawn per window) about the centre."""
    S = 33  # centre at pixel 16
    frames = np.zeros((4, S, S, 3), np.uint8)
    frames[:, 16, 28] = 255  # a dot 12 px right of the centre, in every frame
    replay = EpisodeReplay(str(tmp_path), frame_stack=2, horizon=2, augment_rotate=180)
    replay.add(frames, np.zeros((3, 1), np.float32), np.zeros(3, np.float32), save=False)
    b = replay.sample(16, np.random.default_rng(5))["frames"].numpy()
    rng = np.random.default_rng(5)
    rng.integers(0, 2, 16)  # the windows' picks, then one angle per window (counter-clockwise on the screen)
    angles = np.deg2rad(rng.uniform(-180, 180, 16))
    spots = set()
    for w, a in zip(b, angles):
        ys, xs = [], []
        for f in w:  # each frame's brightest pixel
            y, x = np.unravel_index(f[..., 0].argmax(), f.shape[:2])
            ys.append(y), xs.append(x)
        assert len(set(zip(ys, xs))) == 1  # one angle for the whole window
        assert (xs[0], ys[0]) == pytest.approx((16 + 12 * np.cos(a), 16 - 12 * np.sin(a)), abs=1.5)
        spots.add((ys[0], xs[0]))
    assert len(spots) > 8  # the angle is drawn per window
    with pytest.raises(ValueError, match="augment_rotate"):
        EpisodeReplay(str(tmp_path), 2, 2, augment_rotate=200)


def test_rotation_warps_each_frame_as_one_warp_of_the_stacked_window():
    """random_rotate's per-frame warps give the pixels of one warp of the window's frames as T x C channels."""
    import cv2

    frames = np.random.default_rng(0).integers(0, 256, (5, 6, 20, 20, 3), dtype=np.uint8)
    out = random_rotate(frames, 180, np.random.default_rng(1))
    for w, angle in zip(range(5), np.random.default_rng(1).uniform(-180, 180, 5)):
        stacked = np.ascontiguousarray(frames[w].transpose(1, 2, 0, 3).reshape(20, 20, 18))
        turn = cv2.getRotationMatrix2D((9.5, 9.5), float(angle), 1.0)
        ref = cv2.warpAffine(stacked, turn, (20, 20), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(out[w], ref.reshape(20, 20, 6, 3).transpose(2, 0, 1, 3))


def test_prioritized_replay_draws_by_priority_with_importance_weights(tmp_path):
    replay = EpisodeReplay(str(tmp_path), frame_stack=1, horizon=1, priority_alpha=1.0, priority_beta=1.0)
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 4, 4, 3), np.uint8)
    replay.add(frames, np.zeros((4, 1), np.float32), np.zeros(4, np.float32), save=False)
    assert replay.priorities.tolist() == [1.0] * 4  # new windows start at the largest priority (1 at first)
    replay.update_priorities([0, 1, 2, 3], [9.0, 1.0, 0.0, 0.0])  # zero is kept just above 0: still drawable
    rng = np.random.default_rng(0)
    b = replay.sample(2000, rng)
    t = b["frames"][:, 0, 0, 0, 0].long()
    assert torch.equal(t, b["index"])  # one window per step here
    share = np.bincount(t.numpy(), minlength=4) / 2000
    assert 0.85 < share[0] < 0.95 and 0.05 < share[1] < 0.15 and share[2] + share[3] < 0.01
    w = b["weight"][t == 0][0], b["weight"][t == 1][0]
    torch.testing.assert_close(w[1] / w[0], torch.tensor(9.0))  # (N P)^-1: the rarer window weighs 9x more
    assert float(b["weight"].max()) == 1.0
    replay.add(frames, np.zeros((4, 1), np.float32), np.zeros(4, np.float32), save=False)
    assert replay.priorities[4:].tolist() == [9.0] * 4
    with pytest.raises(ValueError, match="finite"):
        replay.update_priorities([0], [float("nan")])


def test_importance_weights_scale_each_windows_loss_and_priorities_come_back(tmp_path):
    model, replay, rng = _setup(tmp_path, latent=0.0, reward=0.0, load_balance=0.0, router_z=0.0)
    learner = TDLearner(model, [-1.0], [1.0], gamma=0.9)
    batch = replay.sample(4, rng)
    q_before = [p.clone() for p in model.q_heads.parameters()]
    learner.update({**batch, "weight": torch.zeros(4)})  # every window weighted 0: no TD gradient
    assert all(torch.equal(a, b) for a, b in zip(q_before, model.q_heads.parameters()))
    assert learner.last_priority.shape == (4,) and np.all(learner.last_priority > 0)
    learner.update({**batch, "weight": torch.ones(4)})
    assert any(not torch.equal(a, b) for a, b in zip(q_before, model.q_heads.parameters()))
