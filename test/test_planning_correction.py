"""Online model correction: the planner learns, within an episode, where its model is wrong."""

import pytest
import torch

from moejepa_ros.planning import PlannerConfig, make_planner
from moejepa_ros.planning.correction import CorrectedModel, OnlineCorrection
from moejepa_ros.planning.protocol import LinearLatentModel

BOUND = 0.5


def free_model() -> LinearLatentModel:
    """z' = z + a on the plane, blind to any wall."""
    return LinearLatentModel(torch.eye(2), torch.eye(2))


def world_step(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The real plane: the wall x = 0 rejects any move that crosses it."""
    nxt = z + a.clamp(-BOUND, BOUND)
    return z.clone() if (z[0] < 0) != (nxt[0] < 0) else nxt


def correction(capacity=8, prior=0.1) -> OnlineCorrection:
    return OnlineCorrection(capacity, 1.0, 0.25, prior, torch.zeros(2), torch.full((2,), BOUND))


def test_an_observed_block_is_predicted_there_and_nowhere_else():
    model, corr = free_model(), correction()
    z, push = torch.tensor([-0.2, 0.0]), torch.tensor([0.5, 0.0])
    corr.observe(model, z, push, world_step(z, push))  # blocked: the model said +0.5 in x
    view = corr.wrap(model)
    assert isinstance(view, CorrectedModel) and view.latent_dim == 2
    same = view.rollout(z[None], push.reshape(1, 1, 2))[0, 0]
    assert torch.allclose(same, z, atol=0.5 * 0.1 / 1.1 + 1e-6)  # the block, shrunk by the prior only
    back = view.rollout(z[None], (-push).reshape(1, 1, 2))[0, 0]  # the opposite action: as the model says
    assert torch.allclose(back, z - push, atol=1e-4)
    far = torch.tensor([-3.0, 2.0])  # the same push far away: as the model says
    assert torch.allclose(view.rollout(far[None], push.reshape(1, 1, 2))[0, 0], far + push, atol=1e-4)


def test_empty_or_disabled_memory_leaves_the_model_alone():
    model = free_model()
    assert correction().wrap(model) is model
    off = correction(capacity=0)
    z, a = torch.zeros(2), torch.tensor([0.5, 0.0])
    off.observe(model, z, a, z)
    assert len(off) == 0 and off.wrap(model) is model


def test_memory_keeps_the_newest_transitions_and_shrinks_on_reconfigure():
    model, corr = free_model(), correction(capacity=3)
    for i in range(5):
        z = torch.tensor([float(i), 0.0])
        corr.observe(model, z, torch.zeros(2), z)
    assert len(corr) == 3 and corr.z[:, 0].tolist() == [2.0, 3.0, 4.0]
    corr.configure(2, 1.0, 0.25, 0.1)
    assert corr.z[:, 0].tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="capacity"):
        corr.configure(-1, 1.0, 0.25, 0.1)


def test_planner_memory_fills_per_step_and_clears_on_reset():
    cfg = PlannerConfig(method="cem", samples=16, iterations=1, elites=4, keep_elites=2, horizon=3, correction_memory=4)
    planner = make_planner(cfg, free_model(), {"goal": {"enabled": True, "metric": "l2"}}, [-BOUND] * 2, [BOUND] * 2)
    goal, z = torch.tensor([1.0, 1.0]), torch.zeros(2)
    for _ in range(6):
        z = z + planner.plan(z, goal).first_action
    assert len(planner.correction) == 4  # five observed steps, capacity four
    planner.reset()
    assert len(planner.correction) == 0
    planner.update_config(cfg.replace(correction_memory=0))
    for _ in range(3):
        z = z + planner.plan(z, goal).first_action
    assert len(planner.correction) == 0


def test_config_rejects_bad_correction_settings():
    with pytest.raises(ValueError, match="correction_memory"):
        PlannerConfig.from_dict({"correction_memory": -1})
    with pytest.raises(ValueError, match="correction_bandwidth"):
        PlannerConfig.from_dict({"correction_bandwidth": 0.0})
