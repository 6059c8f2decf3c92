"""DMC from pixels: frames are (64, 64, 3) uint8 and rewards equal dm_control's own over the repeat."""

import numpy as np
import pytest

from moejepa_ros.sim import make_env
from moejepa_ros.sim.dmc import ACTION_REPEAT, flatten_observation


@pytest.fixture(scope="module")
def env():
    e = make_env("dmc:cartpole_swingup", seed=0)
    yield e
    e.close()


def test_renders_uint8_frames(env):
    obs, info = env.reset(seed=1)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert obs.std() > 1.0  # a real picture, not a blank buffer
    assert info["state"].dtype == np.float32 and info["state"].shape == (5,)
    assert env.action_repeat == ACTION_REPEAT["cartpole"] == 8


def test_reward_matches_raw_dm_control(env):
    from dm_control import suite

    raw = suite.load("cartpole", "swingup", task_kwargs={"random": 0})
    _, info = env.reset(seed=3)
    raw.task.random.seed(3)
    ts = raw.reset()
    np.testing.assert_allclose(info["state"], flatten_observation(ts.observation), rtol=0, atol=0)
    rng = np.random.default_rng(0)
    total = 0.0
    for _ in range(12):
        a = rng.uniform(-1, 1, size=(1,)).astype(np.float32)
        obs, r, term, trunc, info = env.step(a)
        expected = 0.0
        for _ in range(8):
            ts = raw.step(a)
            expected += ts.reward
        assert r == pytest.approx(expected, rel=0, abs=1e-9)
        np.testing.assert_array_equal(info["state"], flatten_observation(ts.observation))
        assert not term and not trunc
        total += r
    assert total > 0.0  # swing-up reward is dense, so the comparison is not 0 == 0


def test_seed_determinism_and_bad_action(env):
    f1, _ = env.reset(seed=11)
    o1, *_ = env.step(np.array([0.5], np.float32))
    f2, _ = env.reset(seed=11)
    o2, *_ = env.step(np.array([0.5], np.float32))
    assert np.array_equal(f1, f2) and np.array_equal(o1, o2)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan]))


def test_unknown_task_lists_known():
    with pytest.raises(ValueError, match="cartpole_swingup"):
        make_env("dmc:nope_task")


@pytest.mark.parametrize("task, size", [("reacher_easy", 64), ("cartpole_swingup", 84)])
def test_suite_render_equals_dm_control_pixels(task, size):
    """render="suite" gives the frames of dm_control's physics.render (the literature's pixels) exactly; the
    default "fast" frames differ from them (no MSAA, shadows or reflections)."""
    from dm_control import suite

    from moejepa_ros.sim.dmc import resolve_task

    env, fast = make_env(f"dmc:{task}", size=size, render="suite"), make_env(f"dmc:{task}", size=size)
    raw = suite.load(*resolve_task(task), task_kwargs={"random": 5})
    obs, _ = env.reset(seed=5)
    fast_obs, _ = fast.reset(seed=5)
    raw.task.random.seed(5)
    raw.reset()
    a = np.full(env.action_space.shape, 0.7, np.float32)
    for _ in range(3):
        obs, *_ = env.step(a)
        fast_obs, *_ = fast.step(a)
        for _ in range(env.action_repeat):
            raw.step(a)
        expected = raw.physics.render(size, size, camera_id=0)
        assert obs.shape == (size, size, 3)
        np.testing.assert_array_equal(obs, expected)
        assert np.abs(fast_obs.astype(int) - expected).max() > 20
    env.close()
    fast.close()
    with pytest.raises(ValueError, match="render='nice' unknown; use one of fast, suite"):
        make_env("dmc:cartpole_swingup", render="nice")


def test_the_pixels_an_agent_learnt_on_come_from_its_checkpoint():
    from moejepa_ros.sim.dmc import trained_env_kwargs

    assert trained_env_kwargs({"training": {"env_kwargs": {"render": "suite"}}}) == {"render": "suite"}
    fit = {"training": {"config": {"collect": {"env_kwargs": {"size": 84, "render": "suite"}}, "mbrl": {}}}}
    assert trained_env_kwargs(fit) == {"size": 84, "render": "suite"}
    rounds = {"training": {"config": {"collect": {"env_kwargs": {"size": 84}}, "mbrl": {"env_kwargs": {"size": 96}}}}}
    assert trained_env_kwargs(rounds) == {"size": 96}  # the loop's own env kwargs win, as in training.mbrl
    assert trained_env_kwargs({}) == {}


def test_an_agent_plays_on_the_pixels_it_learnt_on():
    from moejepa_ros.sim.dmc import check_same_pixels

    check_same_pixels({}, {"render": "fast"}, "x")  # the default is the fast render
    check_same_pixels({"render": "suite"}, {"render": "suite", "size": 64}, "x")
    with pytest.raises(
        ValueError,
        match="x: the agent learnt on render='suite' pixels but this env renders render='fast'",
    ):
        check_same_pixels({"render": "suite"}, {}, "x")
    check_same_pixels({"size": 84}, {"size": "84"}, "x")  # a size given on the command line is a string
    check_same_pixels({"size": 84.0}, {"size": 84}, "x")
    size = "learnt on size=84 pixels but this env renders size=64; set collect.env_kwargs.size=84"
    with pytest.raises(ValueError, match=size):
        check_same_pixels({"size": 84, "render": "suite"}, {"render": "suite"}, "x")
