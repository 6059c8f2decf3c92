"""training.data.sampler.WindowSampler: shapes, episode boundaries, DrQ shift, determinism, resume."""

import json

import numpy as np
import pytest
import torch

from training.data.cache import build_cache
from training.data.sampler import WindowSampler
from training.rollouts import record_rollouts


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("s")
    # episodes of 6..13 frames over 3 bags (shards), some shorter than the window
    for k, n in enumerate([5, 12, 7]):
        record_rollouts("two_rooms", "walk", 2, root / f"b{k}", max_steps=n, seed=k)
    return build_cache(root, root / "cache")


def test_shapes_dtypes_and_windows_stay_in_one_episode(cache):
    s = WindowSampler(cache, window=8, batch_size=64, seed=0, augment_shift=0)
    assert len(s) == sum(max(0, int(n) - 7) for n in cache.episode_lengths)
    for _ in range(20):
        idx, shard, shift = s.sample_indices()
        ep = cache.episode_ids[idx]
        assert np.all(ep == ep[:, :1])  # never crosses an episode boundary
        assert np.all(np.diff(idx, axis=1) == 1)
        assert np.all(cache.episode_shard[ep[:, 0]] == shard)
    b = s.sample()
    assert b["frames"].dtype == torch.uint8 and tuple(b["frames"].shape) == (64, 8, 64, 64, 3)
    assert b["actions"].dtype == torch.float32 and tuple(b["actions"].shape) == (64, 8, 2)
    assert b["rewards"].dtype == torch.float32 and tuple(b["rewards"].shape) == (64, 8)
    assert tuple(b["state"].shape) == (64, 8, 4)
    # without shift the frames are exactly the cached frames; state ties them to their actions
    s.reset()
    idx, shard, _ = s.sample_indices()
    s.reset()
    b = s.sample()
    for i in range(8):
        k = int(shard[i])
        loc = idx[i] - cache.shard_offsets[k]
        assert np.array_equal(b["frames"][i].numpy(), cache.frames[k][loc])
        assert np.array_equal(b["actions"][i].numpy(), cache.actions[idx[i]])
        assert np.array_equal(b["state"][i].numpy(), cache.state[idx[i]])


def test_random_shift_is_pad_and_crop_with_one_offset_per_window(cache):
    pad = 4
    s = WindowSampler(cache, window=4, batch_size=16, seed=3, augment_shift=pad)
    idx, shard, shift = s.sample_indices()
    s.reset()
    b = s.sample()["frames"].numpy()
    for i in range(16):
        loc = idx[i] - cache.shard_offsets[shard[i]]
        raw = np.asarray(cache.frames[shard[i]][loc])
        padded = np.pad(raw, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
        y, x = shift[i]
        assert np.array_equal(b[i], padded[:, y : y + 64, x : x + 64])
    assert shift.min() >= 0 and shift.max() <= 2 * pad and len(np.unique(shift[:, 0])) > 1


def test_deterministic_under_seed_and_exact_resume(cache):
    a = WindowSampler(cache, 5, 8, seed=11)
    b = WindowSampler(cache, 5, 8, seed=11)
    for _ in range(3):
        x, y = next(a), next(b)
        assert all(torch.equal(x[k], y[k]) for k in x)
    c = WindowSampler(cache, 5, 8, seed=12)
    assert not torch.equal(next(c)["frames"], next(WindowSampler(cache, 5, 8, seed=11))["frames"])
    saved = json.loads(json.dumps(a.state_dict()))
    after = [next(a) for _ in range(2)]
    d = WindowSampler(cache, 5, 8, seed=0)
    d.load_state_dict(saved)
    for want in after:
        got = next(d)
        assert all(torch.equal(want[k], got[k]) for k in want)
    with pytest.raises(ValueError, match="window"):
        WindowSampler(cache, 6, 8).load_state_dict(saved)


def test_episode_subset_and_errors(cache):
    s = WindowSampler(cache, 3, 32, seed=0, episodes=[1])
    idx, _, _ = s.sample_indices()
    assert set(cache.episode_ids[idx].ravel().tolist()) == {1}
    with pytest.raises(ValueError, match="no episode has >= window=100"):
        WindowSampler(cache, 100, 4)
    with pytest.raises(ValueError, match="out of range"):
        WindowSampler(cache, 3, 4, episodes=[99])
    assert "state" not in WindowSampler(cache, 3, 4, with_state=False).sample()


def test_far_frames_lie_in_the_same_episode_within_reach(cache):
    plain = WindowSampler(cache, window=4, batch_size=128, seed=5, augment_shift=0)
    s = WindowSampler(cache, window=4, batch_size=128, seed=5, augment_shift=0, far=6, far_from=1)
    for _ in range(5):
        b, p = s.sample(), plain.sample()
        assert torch.equal(b["frames"], p["frames"])  # the far frames do not change the windows
        idx = s._last_idx
        steps = b["far_steps"].numpy().astype(int)
        far = idx[:, 1] + steps
        assert np.all((steps >= 0) & (steps <= 6))
        assert np.all(cache.episode_ids[far] == cache.episode_ids[idx[:, 0]])
        # the frame is the cached one at that index, and some pairs are clipped at the episode's end
        k = cache.episode_shard[cache.episode_ids[far]]
        want = np.stack([cache.frames[a][f - cache.shard_offsets[a]] for a, f in zip(k, far)])
        assert np.array_equal(b["far_frames"].numpy(), want)
    with pytest.raises(ValueError, match="far_from"):
        WindowSampler(cache, window=4, batch_size=8, far=3, far_from=4)
