"""All planners on a tiny untrained MoE WorldModel: valid, bounded, deterministic plans."""

import pytest
import torch

from moejepa_ros.planning import LatentModel, PlannerConfig, make_planner
from testing.models import tiny_model

METHODS = ["cem", "mppi", "gradient", "cem_gradient"]


@pytest.fixture(scope="module")
def model():
    """4 experts, top-2: the plans go through a real mixture."""
    return tiny_model(num_experts=4, top_k=2, expert_hidden=32, head_hidden=32, stage1_hidden=32)


def _cfg(method):
    return PlannerConfig(
        method=method,
        samples=64,
        horizon=4,
        iterations=3,
        elites=8,
        grad_steps=4,
        grad_restarts=2,
        policy_prior_samples=4,
    )


ALL_OBJECTIVES = {
    "reward": {"terminal_value": True},
    "goal": {"weight": 0.5, "metric": "cosine", "every_step": True},
    "cost": {"weight": 0.1},
    "smoothness": {"weight": 0.01},
    "magnitude": {"weight": 0.01},
}


def test_world_model_satisfies_the_protocol(model):
    assert isinstance(model, LatentModel)


@pytest.mark.parametrize("method", METHODS)
def test_every_planner_plans_on_the_world_model(model, method):
    low, high = torch.tensor([-0.5, -2.0]), torch.tensor([0.5, 2.0])
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        z0, goal = model.encode(frames), model.encode(frames.flip(0))
    plans = []
    for seed in (0, 0):
        p = make_planner(_cfg(method).replace(seed=seed), model, ALL_OBJECTIVES, low, high)
        plans.append([p.plan(z0, goal_z=goal) for _ in range(2)])
    for plan in plans[0]:
        assert plan.ok and plan.actions.shape == (4, 2)
        assert ((plan.actions >= low) & (plan.actions <= high)).all()
        assert plan.stats and plan.rollout_steps > 0
    for a, b in zip(plans[0], plans[1]):
        assert torch.equal(a.actions, b.actions)  # same seed, same plan
    # Planning never leaves gradients on the model, nor changes its mode.
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


@pytest.mark.parametrize("method", ["cem", "gradient"])
def test_returned_cost_is_the_cost_of_the_returned_plan(model, method):
    p = make_planner(_cfg(method), model, {"reward": {"terminal_value": True}}, -1, 1)
    z0 = torch.randn(16)
    plan = p.plan(z0)
    with torch.no_grad():
        u = plan.actions[None]
        z = model.rollout(z0[None], u)
        before = torch.cat([z0[None, None], z[:, :-1]], 1)
        disc = 0.99 ** torch.arange(4.0)
        ret = model.reward(before, u) @ disc + 0.99**4 * model.value(z[:, -1])
    assert plan.predicted_cost == pytest.approx(-float(ret), rel=1e-4, abs=1e-5)


def test_shared_start_latent_fast_path_matches_materialised_rows(model):
    """The planner passes z0 expanded (stride 0) so the model may share step-1 work; same answer."""
    z0 = torch.randn(16)
    a = torch.rand(32, 4, 2) * 2 - 1
    with torch.no_grad():
        fast = model.rollout(z0.expand(32, -1), a)
        slow = model.rollout(z0.repeat(32, 1), a)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
