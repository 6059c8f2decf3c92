"""control.PlannerPolicy: the episode adapter over LatentController + FrameStack, in a real Two-Rooms env."""

import numpy as np
import pytest

from moejepa_ros.control import OK, LatentController, PlannerPolicy
from moejepa_ros.sim.two_rooms import TwoRoomsEnv
from testing.models import GOAL_ONLY, HIGH, LOW, PLANNER, tiny_model


def run(policy, steps: int, seed: int = 3, mode: str = "goal") -> list[np.ndarray]:
    env = TwoRoomsEnv(mode=mode)
    obs, info = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        a = policy(obs, info)
        out.append(a)
        obs, _, _, _, info = env.step(a)
    return out


def test_the_policy_is_the_controller_on_the_episode_stack():
    """Same model and settings: the adapter's actions are the controller's on [o0, o0, o0], [o0, o0, o1], ..."""
    model = tiny_model()
    pol = PlannerPolicy(model, PLANNER, GOAL_ONLY, LOW, HIGH)
    ref = LatentController(model, "cpu", PLANNER, GOAL_ONLY, LOW, HIGH)
    env = TwoRoomsEnv(mode="goal")
    obs, info = env.reset(seed=5)
    ref.set_goal(info["goal_image"])
    seen = [obs] * 3
    for _ in range(4):
        a = pol(obs, info)
        d = ref.act(np.stack(seen[-3:]))
        assert pol.last_decision.level == OK and np.array_equal(a, d.action)
        assert pol.last_plan is pol.controller.last_plan and pol.last_plan.ok
        obs, _, _, _, info = env.step(a)
        seen.append(obs)


def test_a_new_episode_restarts_the_stack_goal_and_warm_start():
    pol = PlannerPolicy(tiny_model(), PLANNER, GOAL_ONLY, LOW, HIGH)
    first = run(pol, 3, seed=7)
    run(pol, 2, seed=8)  # another episode in between
    again = run(pol, 3, seed=7)  # info["step"] == 0 starts afresh: the same actions
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    pol.reset()
    assert len(pol.frames) == 0 and pol.controller.goal_z is None


def test_exploration_noise_stays_in_bounds_and_follows_its_seed():
    model = tiny_model()
    plain = run(PlannerPolicy(model, PLANNER, GOAL_ONLY, LOW, HIGH), 6)
    noisy = run(PlannerPolicy(model, PLANNER, GOAL_ONLY, LOW, HIGH, explore_std=2.0, seed=1), 6)
    same = run(PlannerPolicy(model, PLANNER, GOAL_ONLY, LOW, HIGH, explore_std=2.0, seed=1), 6)
    other = run(PlannerPolicy(model, PLANNER, GOAL_ONLY, LOW, HIGH, explore_std=2.0, seed=2), 6)
    acts = np.stack(noisy)
    assert np.all(acts >= LOW) and np.all(acts <= HIGH) and acts.dtype == np.float32
    assert not np.array_equal(acts[0], plain[0])  # the first step shares the stack and goal, not the noise
    assert np.array_equal(acts, np.stack(same)) and not np.array_equal(acts, np.stack(other))
    with pytest.raises(ValueError, match="explore_std=-1"):
        PlannerPolicy(model, PLANNER, GOAL_ONLY, LOW, HIGH, explore_std=-1.0)


def test_the_goal_objective_needs_a_goal_image_from_the_env():
    pol = PlannerPolicy(tiny_model(), PLANNER, GOAL_ONLY, LOW, HIGH)
    with pytest.raises(ValueError, match=r"no info\['goal_image'\]"):
        run(pol, 1, mode="data")


def test_reward_objectives_plan_without_a_goal():
    acts = run(PlannerPolicy(tiny_model(), PLANNER, {}, LOW, HIGH), 2, mode="data")  # {} -> the defaults
    assert len(acts) == 2 and all(np.all(np.abs(a) <= HIGH) for a in acts)
