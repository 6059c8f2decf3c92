"""Two-Rooms: walls cannot be crossed except through the door, arena bounds, goal spec, determinism."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moejepa_ros.sim import two_rooms as tr
from moejepa_ros.sim.two_rooms import RandomWalkPolicy, TwoRoomsEnv


def _crossing_ok(p, q, wall_x, door_y):
    """If the segment p->q changes side of the wall's centre line, it does so inside the door."""
    sp, sq = tr.room_of(p[0], wall_x), tr.room_of(q[0], wall_x)
    if sp == sq or sp == 0 or sq == 0:
        return True
    t = (wall_x - p[0]) / (q[0] - p[0])
    y = p[1] + t * (q[1] - p[1])
    return abs(y - door_y) <= tr.DOOR_HALF + 1e-9


def _segment_free(p, q, wall_x, door_y, n=64):
    return all(
        tr.is_free(p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1]), wall_x, door_y) for s in np.linspace(0.0, 1.0, n)
    )


coord = st.floats(tr.ARENA_LO, tr.ARENA_HI, allow_nan=False)
act = st.floats(-3.0, 3.0, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(x=coord, y=coord, ax=act, ay=act, wall_x=st.integers(*tr.WALL_X_RANGE), door_y=st.integers(*tr.DOOR_Y_RANGE))
def test_move_never_passes_wall_outside_door(x, y, ax, ay, wall_x, door_y):
    if not tr.is_free(x, y, wall_x, door_y):
        return
    bx, by = tr.clip_action([ax, ay])
    nx, ny = tr.move(x, y, bx, by, wall_x, door_y)
    assert tr.is_free(nx, ny, wall_x, door_y)
    assert _crossing_ok((x, y), (nx, ny), wall_x, door_y)
    assert _segment_free((x, y), (nx, ny), wall_x, door_y)
    # the move is a stop along the commanded segment: never longer, same direction
    assert math.hypot(nx - x, ny - y) <= math.hypot(bx, by) + 1e-9


@settings(max_examples=200, deadline=None)
@given(y=coord, ay=st.floats(-1.0, 1.0), door_y=st.integers(*tr.DOOR_Y_RANGE), start_off=st.floats(0.0, 2.4))
def test_push_straight_into_wall(y, ay, door_y, start_off):
    """Aim right at the wall from close by: it crosses only when the crossing y is in the door."""
    wall_x = 32
    x = wall_x - tr.WALL_HALF - start_off
    nx, ny = tr.move(x, y, 2.4, ay, wall_x, door_y)
    if nx > wall_x:
        assert abs(y + ay * (wall_x - x) / 2.4 - door_y) <= tr.DOOR_HALF + 1e-9
    else:
        assert nx <= wall_x - tr.WALL_HALF or abs(ny - door_y) <= tr.DOOR_HALF


def test_long_episodes_against_the_wall_stay_legal():
    """Many steps of random pushes (biased towards the wall): the invariants hold at every step."""
    rng = np.random.default_rng(0)
    env = TwoRoomsEnv(mode="data", max_episode_steps=500)
    crossings = 0
    for ep in range(20):
        _, info = env.reset(seed=ep)
        wx, dy = info["wall_x"], info["door_y"]
        for _ in range(300):
            p = env.get_state()[:2].astype(float)
            a = rng.normal(0, 1.5, 2) + [np.sign(wx - p[0]) * 1.0, 0.0]
            _, _, _, _, info = env.step(a)
            q = env.get_state()[:2].astype(float)
            assert tr.ARENA_LO <= q[0] <= tr.ARENA_HI and tr.ARENA_LO <= q[1] <= tr.ARENA_HI
            assert tr.is_free(q[0], q[1], wx, dy)
            assert _crossing_ok(p, q, wx, dy)
            crossings += tr.room_of(p[0], wx) * tr.room_of(q[0], wx) < 0
    assert crossings > 0  # the door is really usable


def test_arena_bounds_and_action_clip():
    env = TwoRoomsEnv(mode="data", wall_x=32, door_y=32)
    env.reset(seed=0, options={"start": (5.0, 5.0)})
    for _ in range(50):
        _, _, _, _, info = env.step([-100.0, -100.0])
    assert np.allclose(info["pos"], [tr.ARENA_LO, tr.ARENA_LO])
    env.set_state([10.0, 20.0])
    _, _, _, _, info = env.step([30.0, 40.0])  # norm 50 -> clipped to 2.45
    assert math.hypot(info["pos"][0] - 10.0, info["pos"][1] - 20.0) == pytest.approx(tr.MAX_ACTION, abs=1e-5)
    with pytest.raises(ValueError, match="finite"):
        env.step([np.nan, 0.0])
    with pytest.raises(ValueError, match="2 elements"):
        env.step([1.0, 2.0, 3.0])


def test_observation_and_rendering_channels():
    env = TwoRoomsEnv(mode="goal", wall_x=30, door_y=20, show_goal=True)
    obs, info = env.reset(seed=3)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert info["state"].dtype == np.float32 and info["state"].shape == (4,)
    assert obs[0, :, 2].min() == 255 and obs[40, 30, 2] == 255 and obs[20, 30, 2] == 0  # walls, door
    x, y = info["pos"]
    assert obs[int(round(y)), int(round(x)), 0] > 200  # agent peak in red
    gx, gy = info["goal_state"][:2]
    assert obs[int(round(gy)), int(round(gx)), 1] > 200  # goal marker in green
    gi = info["goal_image"]
    assert gi[int(round(gy)), int(round(gx)), 0] > 200 and gi[..., 1].max() == 0


def test_goal_mode_opposite_rooms_and_success_rule():
    env = TwoRoomsEnv(mode="goal")
    for seed in range(30):
        _, info = env.reset(seed=seed)
        assert tr.room_of(info["pos"][0], info["wall_x"]) == -tr.room_of(info["goal_state"][0], info["wall_x"]) != 0
    assert env.max_episode_steps == 200
    env = TwoRoomsEnv(mode="goal", wall_x=32, door_y=32)
    env.reset(seed=0, options={"start": (10.0, 10.0), "goal": (12.0, 10.0)})
    _, r, term, _, info = env.step([1.0, 0.0])  # distance 1 -> 1 px^2, not < 1
    assert not term and not info["success"] and r == pytest.approx(-1.0)
    _, r, term, _, info = env.step([0.1, 0.0])  # 0.81 px^2
    assert term and info["success"] and r == pytest.approx(-0.9)


def test_goal_mode_truncates_at_200():
    env = TwoRoomsEnv(mode="goal")
    env.reset(seed=0)
    for t in range(200):
        _, _, term, trunc, _ = env.step([0.0, 0.0])
        assert not term
        assert trunc == (t == 199)


def test_deterministic_under_seed():
    def run(seed):
        env, pol = TwoRoomsEnv(mode="data"), RandomWalkPolicy(seed)
        obs, info = env.reset(seed=seed)
        frames, states = [obs], [info["state"]]
        for _ in range(60):
            obs, _, _, _, info = env.step(pol.act(obs, info))
            frames.append(obs)
            states.append(info["state"])
        return np.stack(frames), np.stack(states)

    f1, s1 = run(7)
    f2, s2 = run(7)
    f3, s3 = run(8)
    assert np.array_equal(f1, f2) and np.array_equal(s1, s2)
    assert not np.array_equal(s1, s3)


def test_random_walk_statistics():
    env, pol = TwoRoomsEnv(mode="data"), RandomWalkPolicy(0)
    lengths, crossings = [], 0
    for ep in range(40):
        obs, info = env.reset(seed=ep)
        for _ in range(100):
            a = pol.act(obs, info)
            lengths.append(float(np.hypot(*a)))
            p = info["pos"]
            obs, _, _, trunc, info = env.step(a)
            crossings += tr.room_of(p[0], info["wall_x"]) * tr.room_of(info["pos"][0], info["wall_x"]) < 0
    lengths = np.asarray(lengths)
    assert lengths.min() >= 0.2 - 1e-6 and lengths.max() <= 1.8 + 1e-6
    assert 0.9 < lengths.mean() < 1.1
    assert crossings >= 5  # deliberate crossings happen


def _rooms_changed(pol, seed, steps, start=None, **layout):
    env = TwoRoomsEnv(mode="data", max_episode_steps=steps, **layout)
    obs, info = env.reset(seed=seed, options={"start": start} if start else None)
    changes = 0
    for _ in range(steps):
        p = info["pos"]
        obs, _, _, _, info = env.step(pol.act(obs, info))
        changes += tr.room_of(p[0], info["wall_x"]) * tr.room_of(info["pos"][0], info["wall_x"]) < 0
    return changes


@pytest.mark.parametrize("side", [-1, 1])
def test_deliberate_crossing_goes_through_the_door(side):
    """cross_prob=1: from either room, even pressed against the wall far from the door, the walk
    reaches the door's near side first and crosses within 60 steps."""
    for seed in range(5):
        start = (32 + side * (tr.WALL_HALF + 2.0), 8.0)
        changed = _rooms_changed(RandomWalkPolicy(seed, cross_prob=1.0), seed, 60, start, wall_x=32, door_y=50)
        assert changed >= 1, (side, seed)


def test_cross_every_repeats_the_crossing():
    once = sum(_rooms_changed(RandomWalkPolicy(s, cross_prob=1.0), s, 400) for s in range(4))
    every = sum(_rooms_changed(RandomWalkPolicy(s, cross_prob=1.0, cross_every=50), s, 400) for s in range(4))
    assert every >= 4 * 4 and every > 2 * once
    with pytest.raises(ValueError, match="cross_every"):
        RandomWalkPolicy(0, cross_every=-1)


def test_set_state_and_given_layout():
    env = TwoRoomsEnv(mode="goal", wall_x=25, door_y=40)
    env.reset(seed=0)
    obs, info = env.set_state([40.0, 12.0, 33, 15])
    assert info["wall_x"] == 33 and info["door_y"] == 15
    assert np.array_equal(obs, env.render_state((40.0, 12.0)))
    with pytest.raises(ValueError, match="not free"):
        env.set_state([33.0, 40.0])  # inside the wall
    with pytest.raises(ValueError, match="wall_x"):
        TwoRoomsEnv(wall_x=5)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"bogus": 1})


def test_push_steps_record_more_contact():
    """push_steps: a blocked walk pushes on (at new angles) before turning, so more of its steps are
    blocked; push_steps=0 is the walk as before."""

    def blocked_share(**kw):
        env, n, blocked = TwoRoomsEnv(mode="data", max_episode_steps=300), 0, 0
        for seed in range(4):
            obs, info = env.reset(seed=seed)
            pol = RandomWalkPolicy(seed, **kw)
            for _ in range(300):
                a = pol.act(obs, info)
                p = info["pos"].copy()
                obs, _, _, _, info = env.step(a)
                n += 1
                blocked += np.hypot(*(info["pos"] - p)) < 0.5 * np.hypot(*a)
        return blocked / n

    assert blocked_share(push_steps=4) > 2 * blocked_share()
    with pytest.raises(ValueError, match="push_steps"):
        RandomWalkPolicy(0, push_steps=1.5)


def test_stay_in_room_never_changes_rooms():
    """The strict no-crossing walk (PLDM's ablation): 40 episodes, none changes rooms, even
    episodes that start beside the door; the plain cross_prob=0 walk does so by chance."""
    strict = RandomWalkPolicy(0, cross_prob=0.0, stay_in_room=True)
    loose = RandomWalkPolicy(0, cross_prob=0.0)
    changes = {"strict": 0, "loose": 0}
    for ep in range(40):
        for name, pol in (("strict", strict), ("loose", loose)):
            env = TwoRoomsEnv(mode="data", max_episode_steps=300, wall_x=30, door_y=32)
            obs, info = env.reset(seed=ep, options={"start": [26.0 if ep % 2 else 34.0, 32.0]})
            start_room = tr.room_of(info["pos"][0], 30)
            for _ in range(300):
                obs, _, _, _, info = env.step(pol.act(obs, info))
                changes[name] += tr.room_of(info["pos"][0], 30) == -start_room
    assert changes["strict"] == 0 and changes["loose"] > 0, changes
    with pytest.raises(ValueError, match="stay_in_room needs cross_prob=0"):
        RandomWalkPolicy(0, stay_in_room=True)
    with pytest.raises(ValueError, match="stay_in_room"):
        RandomWalkPolicy(0, cross_prob=0.0, stay_in_room="yes")
