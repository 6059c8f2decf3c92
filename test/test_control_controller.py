"""control.LatentController: the one control step on a tiny real world model (untrained: behaviour, not skill)."""

import numpy as np
import pytest
import torch

from moejepa_ros.control import ERROR, OK, WARN, LatentController
from moejepa_ros.planning import PlannerConfig
from testing.models import GOAL_ONLY, HIGH, LOW, PLANNER, straight_driving_model, tiny_model


def frames(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)


def controller(model=None, objectives=None, **planner) -> LatentController:
    return LatentController(
        model or tiny_model(), "cpu", {**PLANNER, **planner}, objectives or {"reward": {"enabled": True}}, LOW, HIGH
    )


def poison(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(float("nan"))


def test_plans_within_the_bounds_and_times_the_step():
    c = controller()
    d = c.act(frames())
    assert d.level == OK and d.message == "ok" and d.action.dtype == np.float32 and d.action.shape == (2,)
    assert np.all(np.abs(d.action) <= HIGH) and d.plan_actions.shape == (3, 2) and np.isfinite(d.predicted_cost)
    assert d.encode_ms > 0 and d.plan_ms > 0 and c.last_plan is not None
    assert set(c.routing()) >= {"load"} and len(c.routing()["load"]) == 2  # the routing probe ran


def test_idles_with_a_reason_until_a_goal_arrives_and_goal_switches():
    c = controller(objectives=GOAL_ONLY)
    assert c.needs_goal
    d = c.act(frames())
    assert d.level == WARN and "goal image" in d.message and not d.action.any() and c.last_plan is None
    c.set_goal(frames(1)[0])
    assert c.goal_z is not None and c.planner.objectives["goal"].enabled and c.act(frames()).level == OK
    c.set_goal(None)  # goal withdrawn: idle again, the zero command
    assert c.goal_z is None and c.act(frames()).level == WARN
    assert controller(objectives={"reward": {"enabled": False}}).act(frames()).message == "no objective is enabled"


def test_a_new_goal_changes_the_goal_latent_and_forgets_the_warm_start():
    c = controller(objectives=GOAL_ONLY)
    c.set_goal(frames(1)[0])
    z1 = c.goal_z.clone()
    c.act(frames())
    assert c.planner.warm_start is not None
    c.set_goal(frames(2)[0])
    assert c.planner.warm_start is None and not torch.equal(z1, c.goal_z)


def test_a_non_finite_plan_gives_the_zero_command_and_an_error():
    model = tiny_model()
    poison(model.predictor)
    c = controller(model)
    d = c.act(frames())
    assert d.level == ERROR and "plan is not finite" in d.message and np.array_equal(d.action, np.zeros(2, np.float32))
    assert c.planner.warm_start is None  # never warm-start from a poisoned plan


def test_a_non_finite_latent_gives_the_zero_command_and_an_error():
    model = tiny_model()
    poison(model.encoder)
    d = controller(model).act(frames())
    assert d.level == ERROR and "latent" in d.message and not d.action.any() and d.plan_ms == 0.0


def test_bad_frames_raise_naming_the_shape():
    with pytest.raises(ValueError, match=r"frames must be uint8 \(3, 64, 64, 3\), got uint8 \(2, 64, 64, 3\)"):
        controller().act(frames()[:2])


def test_live_updates_of_bounds_and_planner_settings_apply():
    c = controller()
    c.update(planner_cfg=PlannerConfig.from_dict({**PLANNER, "samples": 24, "horizon": 4}))
    d = c.act(frames())
    assert c.planner.cfg.samples == 24 and d.plan_actions.shape == (4, 2)
    c.update(action_low=[-0.1, -0.1], action_high=[0.1, 0.1])
    d = c.act(frames())
    assert np.all(np.abs(d.action) <= 0.1) and np.all(np.abs(d.plan_actions) <= 0.1)
    with pytest.raises(ValueError, match="must be < action_high"):
        c.update(action_low=[0.5, 0.5], action_high=[0.1, 0.1])
    with pytest.raises(ValueError, match="need 2 values"):
        LatentController(tiny_model(), "cpu", PLANNER, GOAL_ONLY, [-1.0], [1.0])


@pytest.mark.parametrize("method", ["gradient", "cem_gradient"])
def test_gradient_planners_run_through_the_step(method):
    """The step encodes under no_grad, not inference_mode: autograd can differentiate the rollout from z0."""
    c = controller(objectives=GOAL_ONLY, method=method, keep_elites=0, grad_steps=2, grad_restarts=2)
    c.set_goal(frames(1)[0])
    for seed in range(2):  # the second step warm-starts from the first
        d = c.act(frames(seed))
        assert d.level == OK, d.message
        assert np.all(np.abs(d.action) <= HIGH) and c.last_plan.method == method
    grads = [s for s in c.last_plan.stats if "step" in s]  # the gradient phase's rows
    assert grads and grads[-1]["best_cost"] <= grads[0]["cost"]


def test_decide_is_the_step_after_the_encoder_and_goal_latents_switch_the_goal_on():
    model = tiny_model()
    a, b = controller(model, objectives=GOAL_ONLY), controller(model, objectives=GOAL_ONLY)
    a.set_goal(frames(1)[0])
    b.set_goal_latent(a.goal_z)
    assert b.planner.objectives["goal"].enabled
    da, db = a.act(frames()), b.decide(b.encode(frames()))
    assert da.level == db.level == OK and np.array_equal(da.action, db.action)
    d = b.decide(torch.full((16,), float("nan")))
    assert d.level == ERROR and "latent" in d.message and not d.action.any()


POSE_PARTS = {"channels": [8, 8, 8, 8], "hidden": 16, "motion_hidden": 16}
POSE_GOAL = {"reward": {"enabled": False}, "goal": {"enabled": True, "metric": "pose"}}


def test_goal_metric_pose_places_the_goal_once_per_replan_and_keeps_the_executed_commands():
    model = tiny_model(relative_pose=POSE_PARTS)
    calls = []
    model.pose_net.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    c = controller(model, POSE_GOAL, hold=3)
    c.warm_up()
    calls.clear()
    assert c.act(frames()).level == WARN and not calls  # no goal yet: idle, R does not run
    c.set_goal(frames(1)[0])
    sent = []
    for i in range(3):
        d = c.act(frames(2 + i))
        assert d.level == OK and np.all(np.isfinite(d.plan_actions)) and d.plan_actions.shape == (9, 2)
        assert np.all(d.action >= LOW) and np.all(d.action <= HIGH)
        sent.append(d.action)
    assert calls == [(1, 64, 64, 3)] * 3  # once per replan, on the newest frame
    assert np.array_equal(c.history[-3:], np.stack(sent)) and not c.history[0].any()
    assert np.isfinite(c.last_plan.goal_distance)
    c.set_goal_latent(c.goal_z)  # a goal latent has no image: no goal pose, the zero command and why
    d = c.act(frames())
    assert d.level == ERROR and "needs a goal image" in d.message and not d.action.any()


def test_with_a_place_net_the_goal_image_is_placed_once_per_goal_and_each_replan_places_only_the_newest_frame():
    model = tiny_model(relative_pose={**POSE_PARTS, "place": True})
    calls = []
    model.place_net.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    c = controller(model, POSE_GOAL, hold=3)
    c.set_goal(frames(1)[0])
    assert calls == [1] and c.goal_place is not None and c.route is None  # no free-space map: no route
    for i in range(3):
        assert c.act(frames(2 + i)).level == OK
    assert calls == [1, 1, 1, 1]  # L(goal) kept from set_goal: one frame per replan
    assert torch.allclose(c.goal_place, model.place(c.goal_frame)[0])


def test_the_controller_tracks_the_goal_with_its_gain_and_forgets_it_on_a_new_goal_or_episode():
    c = controller(
        straight_driving_model(0.05, **POSE_PARTS),
        {**POSE_GOAL, "goal": {**POSE_GOAL["goal"], "pose_gain": 0.4}},
        hold=3,
    )
    c.set_goal(frames(1)[0])
    assert c.goal_tracker.gain == pytest.approx(0.4)
    c.act(frames(2))
    c.act(frames(3))
    assert c.goal_tracker.pose is not None and len(c.goal_tracker._since) == 1
    c.at_rest()
    assert c.goal_tracker.pose is None
    c.act(frames(4))
    c.set_goal(frames(5)[0])
    assert c.goal_tracker.pose is None


def test_goal_metric_pose_refuses_a_horizon_beyond_the_motion_model_and_a_model_without_the_parts():
    model = tiny_model(relative_pose=POSE_PARTS)
    with pytest.raises(ValueError, match=r"horizon x hold = 9 x 3 = 27 steps exceeds the motion model's horizon 24"):
        controller(model, POSE_GOAL, horizon=9, hold=3)
    c = controller(model, POSE_GOAL, horizon=8, hold=3)
    with pytest.raises(ValueError, match="exceeds the motion model's horizon"):
        c.update(planner_cfg=PlannerConfig.from_dict({**PLANNER, "horizon": 5, "hold": 5}))
    assert c.cfg.horizon == 8
    with pytest.raises(ValueError, match="moejepa-train pose"):
        controller(tiny_model(), POSE_GOAL)
