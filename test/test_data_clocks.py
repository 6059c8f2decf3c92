"""Stamps and clocks of robot bags (training.data.clocks, the reader's stamp handling): a glitched image
stamp costs its own frame, a camera clock that disagrees with the recorder's log time is measured and
warned about, `stamp_source=auto` reads such a bag on the log time, stale held commands are counted."""

import json

import numpy as np
import pytest

from moejepa_ros.codecs import action_to_msg, make_image, new_message
from testing.bags import CAMERA, CMD, MS, README_TOPICS, T, frame, write_bag
from training.data.align import STALE_HOLD
from training.data.bag_reader import OUT_OF_ORDER, read_bag
from training.data.cache import build_cache
from training.data.episode import BagDataError
from training.data.report import report_data
from training.data.topics import TopicConfig

TYPES = {CAMERA: "sensor_msgs/msg/Image", CMD: "geometry_msgs/msg/Twist"}
LOG0 = 1_700_000_000 * 1_000_000_000  # a recorder's wall clock
DT = 50 * MS


def bag_of(path, n=30, header=lambda i, t: t, skip_cmds=()):
    """Camera every 50 ms logged 3 ms after its header stamp `header(i, log time of capture)`, a Twist (no
    header: log time) 5 ms after each capture, after its image arrived. Returns (bag, frames, actions,
    capture times)."""
    recs, frames, acts, times = [], [], [], []
    for i in range(n):
        t = LOG0 + i * DT
        rgb, a = frame(i, 16, 16), np.array([0.1 * i, -0.01 * i], np.float32)
        recs.append((CAMERA, t + 3 * MS, make_image(T[TYPES[CAMERA]], rgb, "rgb8", int(header(i, t)), "camera")))
        if i not in skip_cmds:
            tw = action_to_msg(a, new_message(T[TYPES[CMD]]), fields=["linear.x", "angular.z"])
            recs.append((CMD, t + 5 * MS, tw))
        frames.append(rgb), acts.append(a), times.append(t)
    return write_bag(path, recs, TYPES), np.stack(frames), np.stack(acts), np.array(times)


def topics(**kw):
    return TopicConfig.from_dict({**README_TOPICS, "episode_topic": None, "state_topic": None, **kw})


def runs(eps):
    return [len(e) for e in eps]


GLITCHES = {  # image index -> its header stamp, given the capture time t and the previous one
    "duplicate": (10, lambda t: t - DT),
    "back": (15, lambda t: t - 2 * DT - 7 * MS),
    "far ahead": (20, lambda t: t + 100_000 * MS),
}


@pytest.mark.parametrize("skip_bad", [False, True])
def test_one_glitched_image_stamp_drops_that_frame_never_the_bag(tmp_path, skip_bad):
    glitch = {i: f for i, f in GLITCHES.values()}
    bag, frames, acts, _ = bag_of(tmp_path / "b", header=lambda i, t: glitch[i](t) if i in glitch else t)
    eps, summ = read_bag(bag, topics(stamp_source="header"), skip_bad=skip_bad)
    # each dropped frame ends a run (frame stacks never straddle a missing frame)
    assert runs(eps) == [10, 4, 4, 9]
    kept = [i for i in range(30) if i not in glitch]
    assert np.array_equal(np.concatenate([e.frames for e in eps]), frames[kept])
    np.testing.assert_allclose(np.concatenate([e.actions for e in eps]), acts[kept], atol=1e-7)
    assert summ.dropped_frames == {OUT_OF_ORDER: 3} and not summ.errors
    assert any("out of order" in n for n in summ.notes)


def test_a_boot_time_camera_clock_is_measured_and_auto_reads_on_the_log_time(tmp_path):
    boot = 12_345 * MS  # the camera counts from its power-on
    bag, frames, acts, _ = bag_of(tmp_path / "b", header=lambda i, t: t - LOG0 + boot)
    with pytest.raises(BagDataError) as ei:  # header stamps near 12 s, commands near 1.7e9 s: nothing aligns
        read_bag(bag, topics(stamp_source="header"))
    assert "time-since-boot" in str(ei.value) and "stamp_source" in str(ei.value)
    assert len(str(ei.value).splitlines()) == 1
    eps, summ = read_bag(bag, topics())  # auto is the default
    assert runs(eps) == [30]
    assert np.array_equal(eps[0].frames, frames)
    np.testing.assert_allclose(eps[0].actions, acts, atol=1e-7)
    check = summ.clocks[str(bag)]
    assert check["stamp_source"] == "log"
    cam = check["topics"][CAMERA]
    assert cam["offset_s"] == pytest.approx((LOG0 - boot + 3 * MS) / 1e9, abs=1e-3)
    assert cam["boot_clock"] and not cam["agrees"] and CMD not in check["topics"]  # Twist has no header
    (warning,) = check["warnings"]
    assert CAMERA in warning and f"{cam['offset_s']:+.3f} s" in warning and "time-since-boot" in warning


@pytest.mark.parametrize("offset_s, source", [(2.5, "log"), (-0.02, "header")])
def test_a_constant_camera_offset_beyond_the_tolerance_is_warned_and_avoided(tmp_path, offset_s, source):
    off = int(offset_s * 1e9)
    bag, frames, acts, times = bag_of(tmp_path / "b", header=lambda i, t: t + off)
    eps, summ = read_bag(bag, topics())
    check = summ.clocks[str(bag)]
    assert check["stamp_source"] == source
    assert check["topics"][CAMERA]["offset_s"] == pytest.approx(-offset_s + 0.003, abs=1e-6)
    assert bool(check["warnings"]) == (source == "log")
    want = times + 3 * MS if source == "log" else times + off
    assert runs(eps) == [30] and np.array_equal(eps[0].stamps_ns, want)
    np.testing.assert_allclose(eps[0].actions, acts, atol=1e-7)
    # forced header stamps keep the offset clock and say so
    _, summ_h = read_bag(bag, topics(stamp_source="header"), skip_bad=True)
    assert summ_h.clocks[str(bag)]["stamp_source"] == "header"
    warnings = summ_h.clocks[str(bag)]["warnings"]
    assert bool(warnings) == (source == "log")
    assert all("an offset clock" in w and "stamp_source=auto or log" in w for w in warnings)


def test_held_commands_older_than_the_limit_are_counted(tmp_path):
    gap = range(10, 20)  # the command topic goes quiet for 0.5 s
    bag, frames, acts, _ = bag_of(tmp_path / "b", skip_cmds=gap)
    eps, summ = read_bag(bag, topics())
    assert runs(eps) == [30] and summ.clocks[str(bag)]["held_action_age_s"]["max"] == pytest.approx(0.495)
    eps, summ = read_bag(bag, topics(max_hold_s=0.2))
    # images 10..13 hold command 9 at most 199 ms old; 14..19 hold it longer
    assert runs(eps) == [14, 10] and summ.dropped_frames == {STALE_HOLD: 6}
    assert summ.clocks[str(bag)]["held_action_age_s"]["max"] < 0.2


def test_clock_checks_reach_data_summary_json(tmp_path):
    bag, *_ = bag_of(tmp_path / "bags" / "b", header=lambda i, t: t + 3_000_000_000)
    cache = build_cache(tmp_path / "bags", tmp_path / "cache", topics(), image_size=16)
    doc = json.loads(open(report_data(cache, str(tmp_path / "run"))).read())
    (entry,) = doc["bags"]
    assert entry["clocks"]["stamp_source"] == "log" and entry["clocks"]["warnings"]
    assert entry["clocks"]["topics"][CAMERA]["offset_s"] == pytest.approx(-2.997)


def test_stamp_source_is_validated():
    with pytest.raises(ValueError, match="stamp_source='camera'"):
        TopicConfig(stamp_source="camera")
    with pytest.raises(ValueError, match="clock_tolerance_s=0"):
        TopicConfig(clock_tolerance_s=0)
