"""The planner's TD-MPC path: bootstrap with Q(z_H, pi(z_H)) at the horizon, actor rollouts among the samples."""

import pytest
import torch
from torch import nn

from moejepa_ros.planning import PlannerConfig, make_planner
from testing.models import tiny_model


class Drift(nn.Module):
    """z' = z + a (1-d), no reward; Q_i(z, a) = z + a (+ i): only the horizon's Q tells plans apart.
    The actor always wants `act` (normalised); it logs every action batch the planner rolls out."""

    latent_dim, action_dim = 1, 1

    def __init__(self, act: float = 0.5):
        super().__init__()
        self.act, self.seen = act, []

    def rollout(self, z0, actions):
        self.seen.append(actions.detach().clone())
        return z0.reshape(-1, 1, 1) + actions.cumsum(1)

    def reward(self, z, a):
        return torch.zeros(z.shape[:-1])

    def q(self, z, a):
        base = (z + a)[..., 0]
        return torch.stack([base, base + 1.0])

    def actor(self, z):
        return torch.full_like(z, self.act)


CFG = PlannerConfig(method="cem", samples=64, elites=8, horizon=3, iterations=3, keep_elites=0, gamma=0.9)


def test_q_bootstrap_prefers_the_plan_whose_end_is_worth_more():
    model = Drift(act=0.5)
    z0 = torch.zeros(1)
    plan = make_planner(CFG, model, {"reward": {"terminal_q": True}}, -2.0, 2.0).plan(z0)
    assert plan.actions.min() > 1.0  # drives towards the high-Q end (upper bound 2)
    z_h = float(plan.actions.sum())
    # cost = -gamma^H mean_i Q_i(z_H, pi(z_H)), pi's normalised 0.5 is 1.0 in command units
    assert plan.predicted_cost == pytest.approx(-(0.9**3) * (z_h + 1.0 + 0.5), rel=1e-5)
    flat = make_planner(CFG, Drift(), {"reward": {}}, -2.0, 2.0).plan(z0)
    assert flat.predicted_cost == 0.0  # without the bootstrap every plan is worth the same


def test_terminal_q_needs_q_and_actor_heads():
    with pytest.raises(ValueError, match=r"needs model.q\(\)"):
        make_planner(CFG, tiny_model(), {"reward": {"terminal_q": True}}, -1, 1)
    model = tiny_model(num_q=3)
    assert "q" in model.heads and model.q(torch.zeros(5, model.latent_dim), torch.zeros(5, 2)).shape == (3, 5)
    plan = make_planner(CFG.replace(policy_prior_samples=4), model, {"reward": {"terminal_q": True}}, -1, 1).plan(
        torch.rand(model.latent_dim)
    )
    assert plan.ok


def test_actor_rollouts_are_in_the_population():
    model = Drift(act=0.37)
    cfg = CFG.replace(policy_prior_samples=5, policy_prior_std=0.0, iterations=1)
    make_planner(cfg, model, {"reward": {"terminal_q": True}}, -2.0, 2.0).plan(torch.zeros(1))
    population = model.seen[-2]  # the scored samples (the last rollout scores the refitted mean)
    is_actor = (population - 0.74).abs().amax((1, 2)) < 1e-6  # 0.37 normalised = 0.74 in command units
    assert int(is_actor.sum()) == 5 and population.shape[0] == 64
