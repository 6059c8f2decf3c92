"""The alignment rules of training.data.align (hold, nearest, markers, gaps, rewards, state)."""

import numpy as np
import pytest

from training.data.align import STALE_HOLD, Series, align, increasing

MS = 1_000_000


def ser(stamps_ms, values):
    return Series(np.asarray(stamps_ms, np.int64) * MS, np.asarray(values, np.float32))


def test_hold_same_stamp_belongs_to_image_and_holds_between():
    # images every 30 ms; commands at 0, 35 (between images 1 and 2), 90 (= image 3's stamp)
    img = np.array([0, 30, 60, 90, 120], np.int64) * MS
    acts = ser([0, 35, 90], [[1.0], [2.0], [3.0]])
    al = align(img, acts, split_gap_ns=None)
    (seg,) = al.segments
    # image 1 covers [30, 60): the command at 35 is in force for it; image 3 takes the one at 90
    assert seg.actions[:, 0].tolist() == [1.0, 2.0, 2.0, 3.0, 3.0]
    assert (seg.start, seg.stop) == (0, 5)


def test_hold_drops_leading_images_without_action_and_stale_ones():
    img = np.array([0, 30, 60, 90, 300, 330], np.int64) * MS
    acts = ser([40, 95], [[1.0], [2.0]])
    al = align(img, acts, split_gap_ns=None)
    assert al.dropped_frames["no action"] == 1  # image 0's interval [0, 30) has no command yet
    assert [s.actions[:, 0].tolist() for s in al.segments] == [[1.0, 1.0, 2.0, 2.0, 2.0]]
    al = align(img, acts, split_gap_ns=None, max_hold_ns=100 * MS)
    # images at 300 and 330 hold a command 205+ ms old -> dropped (counted apart), run cut there
    assert al.dropped_frames["no action"] == 1 and al.dropped_frames[STALE_HOLD] == 2
    assert [(s.start, s.stop) for s in al.segments] == [(1, 4)]


def test_nearest_within_tolerance():
    img = np.array([0, 30, 60, 90], np.int64) * MS
    acts = ser([2, 33, 75], [[1.0], [2.0], [3.0]])
    al = align(img, acts, mode="nearest", tolerance_ns=5 * MS, split_gap_ns=None, min_len=1)
    assert al.dropped_frames["no action within tolerance"] == 2  # 60 (15 ms off) and 90
    assert [s.actions[:, 0].tolist() for s in al.segments] == [[1.0, 2.0]]


def test_markers_split_and_no_hold_across_them_rewards_summed():
    img = np.array([0, 10, 20, 30, 40, 50], np.int64) * MS
    markers = ser([0, 30], [7, 8])
    acts = ser([0, 10, 20], [[1.0], [2.0], [3.0]])  # nothing issued in episode 8
    rew = ser([0, 5, 10, 20, 30], [1.0, 0.5, 2.0, 3.0, 9.0])
    al = align(
        img,
        acts,
        rewards=rew,
        markers=markers.__class__(markers.stamps, markers.values.astype(np.int64)),
        split_gap_ns=None,
        min_len=1,
    )
    assert [s.episode for s in al.segments] == [7]
    (seg,) = al.segments
    assert seg.actions[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert seg.rewards.tolist() == [1.5, 2.0, 3.0]  # [0,10) sums two rewards; [20,30) stops at the marker
    assert al.dropped_frames["no action"] == 3


def test_time_gap_and_break_before_split_and_short_runs_dropped():
    img = np.array([0, 10, 20, 2000, 2010, 2020, 2030], np.int64) * MS
    acts = ser(np.arange(0, 2040, 10), np.arange(204)[:, None])
    brk = np.zeros(7, bool)
    brk[6] = True
    al = align(img, acts, split_gap_ns=500 * MS, break_before=brk, min_len=2)
    assert [(s.start, s.stop) for s in al.segments] == [(0, 3), (3, 6)]
    assert al.dropped_episodes["shorter than min_episode_len"] == 1


def test_poisoned_interval_drops_image_and_state_is_latest_before():
    img = np.array([0, 10, 20, 30], np.int64) * MS
    acts = ser([0, 10, 20, 30], [[0.0], [1.0], [2.0], [3.0]])
    st = ser([5, 20], [[1.0, 1.0], [2.0, 2.0]])
    al = align(img, acts, state=st, poison=np.array([25 * MS]), split_gap_ns=None, min_len=1)
    assert al.dropped_frames["unreadable action/reward/state/marker record"] == 1
    a, b = al.segments
    assert (a.start, a.stop, b.start, b.stop) == (0, 2, 3, 4)
    assert np.isnan(a.state[0]).all() and a.state[1].tolist() == [1.0, 1.0]
    assert b.state[0].tolist() == [2.0, 2.0]


def test_rejects_non_increasing_stamps():
    with pytest.raises(ValueError, match="strictly increasing"):
        align(np.array([0, 10, 10]), ser([0], [[0.0]]))


@pytest.mark.parametrize(
    "stamps, dropped",
    [
        ([0, 10, 20, 30], []),
        ([0, 10, 10, 20], [2]),  # a duplicate: the later frame goes
        ([0, 10, 5, 20], [2]),  # one stamp back in time
        ([0, 10, 1000, 20, 30, 40], [2]),  # one stamp far ahead costs only itself
        ([0, 10, 20, 15, 18, 30], [2]),  # keeping 15 and 18 keeps more frames
        ([0, 10, 20, 15, 30], [3]),  # a tie: the later, out-of-order frame goes
        ([50, 10, 20, 30], [0]),
    ],
)
def test_increasing_keeps_a_longest_increasing_run(stamps, dropped):
    keep = increasing(np.array(stamps, np.int64))
    assert np.flatnonzero(~keep).tolist() == dropped
