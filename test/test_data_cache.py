"""training.data.cache: content, resize, hit on second run, invalidation, bad bags, time step, state names;
YUV / Bayer camera bags pixel-correct and depth bags through the fixed range."""

import json

import cv2
import numpy as np
import pytest

from moejepa_ros.codecs import GreyRanges, action_to_msg, make_image, new_message
from testing.bags import CAMERA, CMD, MS, ODOM, README_TOPICS, ROBOT_TYPES, T, robot_bag, write_bag
from testing.camera_encodings import COLOURS, mosaic, patch_error, patches, uyvy
from training.data.bag_reader import read_bags
from training.data.cache import DataCache, build_cache
from training.data.episode import BagDataError
from training.data.topics import TopicConfig
from training.rollouts import record_rollouts


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    record_rollouts("two_rooms", "walk", 4, root, max_steps=9, seed=3, episodes_per_bag=2, env_kwargs={"mode": "goal"})
    return root


def test_cache_holds_the_episodes_and_second_run_is_a_hit(bags, tmp_path):
    eps, _ = read_bags(bags)
    c = build_cache(bags, tmp_path)
    assert not c.hit and c.num_episodes == 4 and c.num_frames == sum(len(e) for e in eps)
    assert len(c.frames) == 2 and all(isinstance(f, np.memmap) for f in c.frames)  # one shard per bag
    for i, e in enumerate(eps):
        got = c.episode(i)
        assert np.array_equal(got.frames, e.frames) and np.array_equal(got.actions, e.actions)
        assert np.array_equal(got.rewards, e.rewards) and np.array_equal(got.state, e.state)
        assert np.array_equal(got.stamps_ns, e.stamps_ns)
    assert c.episode_ids.tolist() == np.repeat(np.arange(4), c.episode_lengths).tolist()
    index = json.loads((c.root / "index.json").read_text())
    assert index["summary"]["episodes"] == 4 and index["action_dim"] == 2 and index["state_dim"] == 4
    assert not any(p.suffix == ".pkl" for p in c.root.iterdir())
    stamp = (c.root / "index.json").stat().st_mtime_ns
    c2 = build_cache(bags, tmp_path)
    assert c2.hit and c2.root == c.root and (c.root / "index.json").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [c.key]  # no temp folders left behind


def test_resize_and_config_change_the_key(bags, tmp_path):
    c64 = build_cache(bags, tmp_path)
    c32 = build_cache(bags, tmp_path, image_size=32)
    assert not c32.hit and c32.key != c64.key and c32.image_size == (32, 32)
    ref = cv2.resize(np.asarray(c64.frames[0][3]), (32, 32), interpolation=cv2.INTER_AREA)
    assert c32.frames[0].shape[1:] == (32, 32, 3) and np.array_equal(c32.frames[0][3], ref)


def test_changed_bag_invalidates(tmp_path):
    src = tmp_path / "bags"
    record_rollouts("two_rooms", "random", 1, src, max_steps=3)
    a = build_cache(src, tmp_path / "cache")
    record_rollouts("two_rooms", "random", 1, src / "more", max_steps=3, seed=9)
    b = build_cache(src, tmp_path / "cache")
    assert not b.hit and b.key != a.key and b.num_episodes == 2
    assert build_cache(src, tmp_path / "cache").hit
    assert not build_cache(src, tmp_path / "cache", rebuild=True).hit


def test_parallel_build_matches_serial(bags, tmp_path):
    one = build_cache(bags, tmp_path / "one", workers=1)
    two = build_cache(bags, tmp_path / "two", workers=2)
    assert one.key == two.key
    for f1, f2 in zip(one.frames, two.frames):
        assert np.array_equal(f1, f2)
    assert np.array_equal(one.actions, two.actions) and np.array_equal(one.state, two.state)


def test_bad_bag_skipped_or_named(bags, tmp_path):
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + bytes(200))
    with pytest.raises(BagDataError, match="bad.mcap"):
        build_cache([bags, bad], tmp_path / "c")
    assert not any((tmp_path / "c").iterdir())  # a failed build leaves nothing
    c = build_cache([bags, bad], tmp_path / "c", skip_bad=True)
    assert c.num_episodes == 4 and str(bad) in c.summary.skipped_files


def test_open_checks_the_index(tmp_path):
    with pytest.raises(ValueError, match="index.json"):
        DataCache(tmp_path)


def test_the_index_records_the_time_step_and_the_states_names(tmp_path):
    # 25 Hz and 20 Hz bags: the median over all image intervals within episodes (gaps between episodes excluded)
    robot_bag(tmp_path / "bags" / "a", lengths=(12, 8), dt_ms=40, topics=(CAMERA, CMD, ODOM))
    robot_bag(tmp_path / "bags" / "b", lengths=(6,), dt_ms=50, topics=(CAMERA, CMD, ODOM))
    c = build_cache(tmp_path / "bags", tmp_path / "cache", TopicConfig.robot())
    index = json.loads((c.root / "index.json").read_text())
    assert index["time_step_s"] == c.time_step_s == 0.04
    assert index["state_names"] == c.state_names == ["x", "y", "yaw"] and c.state_dim == 3
    assert c.episode(0).state_names == ("x", "y", "yaw")
    plain = build_cache(tmp_path / "bags" / "b", tmp_path / "cache", TopicConfig.robot(state_topic=None))
    assert plain.time_step_s == 0.05 and plain.state is None and plain.state_names is None


def _camera_bag(path, encoding: str, images) -> None:
    """A camera (`encoding`, raw `images`) and /cmd_vel bag, 20 Hz, as a robot records it."""
    recs = []
    for k, pixels in enumerate(images):
        t = (1000 + 50 * k) * MS
        recs.append((CAMERA, t + 3 * MS, make_image(T[ROBOT_TYPES[CAMERA]], pixels, encoding, t, "camera")))
        twist = action_to_msg(
            np.array([0.1 * k, 0.0], np.float32), new_message(T[ROBOT_TYPES[CMD]]), fields=["linear.x", "angular.z"]
        )
        recs.append((CMD, t + MS, twist))
    write_bag(path, recs, {CAMERA: ROBOT_TYPES[CAMERA], CMD: ROBOT_TYPES[CMD]})


@pytest.mark.parametrize(
    ("encoding", "tol"), [("yuv422", 2), ("yuv422_yuy2", 2), ("bayer_rggb8", 0), ("bayer_gbrg16", 0)]
)
def test_a_yuv_or_bayer_camera_bag_caches_its_colours(tmp_path, encoding, tol):
    """Frames of flat colour patches (other colours in each frame), sent as the camera's raw bytes."""
    colours = [np.roll(COLOURS, k, axis=0) for k in range(6)]
    truth = [patches(16, 24, c) for c in colours]
    if encoding.startswith("yuv"):
        raw = [uyvy(rgb) if encoding == "yuv422" else np.ascontiguousarray(uyvy(rgb)[..., ::-1]) for rgb in truth]
    else:
        raw = [mosaic(rgb, encoding[6:10]) for rgb in truth]
        raw = [r.astype(np.uint16) * 257 for r in raw] if encoding.endswith("16") else raw
    _camera_bag(tmp_path / "bag", encoding, raw)
    c = build_cache(tmp_path / "bag", tmp_path / "cache", TopicConfig.from_dict(README_TOPICS), (16, 24))
    assert c.num_frames == 6
    frames = c.episode(0).frames
    for k, cols in enumerate(colours):
        assert patch_error(frames[k], cols, margin=0 if encoding.startswith("yuv") else 2) <= tol, k


def test_depth_bags_cache_through_the_fixed_range(tmp_path):
    """16UC1 (mm) and 32FC1 (m) of one scene cache the same frames; the range is part of the cache key."""
    metres = np.linspace(0.0, 6.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    _camera_bag(tmp_path / "mm" / "bag", "16UC1", [np.rint(metres * 1000).astype(np.uint16)] * 3)
    _camera_bag(tmp_path / "m" / "bag", "32FC1", [metres] * 3)
    topics = TopicConfig.from_dict(README_TOPICS)
    four = GreyRanges(depth=(0.0, 4.0))
    mm = build_cache(tmp_path / "mm", tmp_path / "cache", topics, 16, ranges=four)
    m = build_cache(tmp_path / "m", tmp_path / "cache", topics, 16, ranges=four)
    want = np.rint(np.clip(metres / 4.0, 0, 1) * 255)
    for c in (mm, m):
        assert c.ranges == four and c.index["preprocess"]["depth_range"] == [0.0, 4.0]
        np.testing.assert_allclose(c.episode(0).frames[2, :, :, 1], want, atol=1)
    np.testing.assert_allclose(mm.episode(0).frames, m.episode(0).frames, atol=1)  # mm rounding
    default = build_cache(tmp_path / "mm", tmp_path / "cache", topics, 16)
    assert not default.hit and default.root != mm.root and default.ranges == GreyRanges()
    np.testing.assert_allclose(default.episode(0).frames[0, :, :, 0], np.rint(metres / 10.0 * 255), atol=1)
