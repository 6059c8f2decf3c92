"""Planners on an analytic linear model z' = Az + Ba with a closed-form / exhaustive optimum."""

import itertools

import pytest
import torch

from moejepa_ros.planning import LinearLatentModel, PlannerConfig, Problem, make_planner

D, A, H = 3, 2, 4


def _system(seed=0, scale_b=0.6):
    g = torch.Generator().manual_seed(seed)
    Am = torch.tensor([[0.9, 0.2, 0.0], [0.0, 0.8, 0.1], [0.1, 0.0, 0.95]])
    B = torch.randn(D, A, generator=g) * scale_b
    goal = torch.tensor([1.0, -0.5, 0.5])
    return LinearLatentModel(Am, B, goal=goal), torch.zeros(D)


def _lifted(model, z0, h):
    """Stacked latents z_1..z_h = M a + c (a flattened [h*A]): the exact affine rollout."""
    Am, B = model.A, model.B
    M = torch.zeros(h * D, h * A)
    c = torch.zeros(h * D)
    for t in range(h):
        c[t * D : (t + 1) * D] = torch.linalg.matrix_power(Am, t + 1) @ z0
        for s in range(t + 1):
            M[t * D : (t + 1) * D, s * A : (s + 1) * A] = torch.linalg.matrix_power(Am, t - s) @ B
    return M, c


def _optimum(model, z0, h, ridge=0.0):
    """argmin_a sum_t ||z_t - g||^2 + ridge ||a||^2 (unconstrained least squares), [h, A]."""
    M, c = _lifted(model, z0, h)
    target = model.goal.repeat(h) - c
    lhs = M.T @ M + ridge * torch.eye(h * A)
    return torch.linalg.solve(lhs, M.T @ target).reshape(h, A)


SAMPLING = ["cem", "mppi"]
ALL = ["cem", "mppi", "gradient", "cem_gradient"]


def _cfg(method, **kw):
    base = dict(
        method=method,
        samples=512,
        horizon=H,
        iterations=12,
        elites=32,
        gamma=1.0,
        temperature=0.05,
        init_std=0.5,
        grad_steps=60,
        grad_lr=0.05,
        grad_restarts=2,
    )
    base.update(kw)
    return PlannerConfig(**base)


@pytest.mark.parametrize("method", ALL)
def test_first_action_matches_closed_form_optimum(method):
    model, z0 = _system()
    a_star = _optimum(model, z0, H)
    bound = 3.0
    assert a_star.abs().max() < bound * 0.8  # interior optimum, so least squares is exact
    p = make_planner(_cfg(method), model, {"reward": {}}, -bound, bound)
    plan = p.plan(z0)
    # Predicted cost agrees with the closed form's cost within a small relative gap.
    M, c = _lifted(model, z0, H)
    best = float((M @ a_star.reshape(-1) + c - model.goal.repeat(H)).pow(2).sum())
    assert plan.predicted_cost == pytest.approx(best, rel=0.02, abs=0.02)
    torch.testing.assert_close(plan.first_action, a_star[0], atol=0.1, rtol=0)
    assert plan.actions.shape == (H, A) and plan.ok


@pytest.mark.parametrize("method", ALL)
def test_goal_plus_magnitude_matches_ridge_optimum(method):
    """goal (sq_l2, every step) + 0.5 * magnitude == ridge regression in closed form."""
    model, z0 = _system(seed=1)
    a_star = _optimum(model, z0, H, ridge=0.5)
    objs = {"goal": {"metric": "sq_l2", "every_step": True}, "magnitude": {"weight": 0.5}}
    p = make_planner(_cfg(method), model, objs, -3.0, 3.0)
    plan = p.plan(z0, goal_z=model.goal)
    torch.testing.assert_close(plan.first_action, a_star[0], atol=0.1, rtol=0)


@pytest.mark.parametrize("method", ALL)
def test_bounded_optimum_matches_exhaustive_search_and_bounds_hold(method):
    """A=1, H=2, goal out of reach: the constrained optimum by a dense grid over the box."""
    Am = torch.tensor([[1.0]])
    B = torch.tensor([[1.0]])
    model = LinearLatentModel(Am, B, goal=torch.tensor([5.0]))
    low, high = -0.4, 0.7
    grid = torch.linspace(low, high, 221)
    best, arg = float("inf"), None
    for a0, a1 in itertools.product(grid, grid):
        cost = (a0 - 5) ** 2 + (a0 + a1 - 5) ** 2 + 0.3 * (a1 - a0) ** 2
        if cost < best:
            best, arg = float(cost), (float(a0), float(a1))
    cfg = _cfg(method, horizon=2)
    p = make_planner(cfg, model, {"reward": {}, "smoothness": {"weight": 0.3}}, low, high)
    plan = p.plan(torch.zeros(1), prev_action=torch.tensor([0.7]))  # a_{-1} at the optimum's a0: no extra term
    assert float(plan.first_action[0]) == pytest.approx(arg[0], abs=0.02)
    assert plan.predicted_cost == pytest.approx(best, rel=1e-3)


@pytest.mark.parametrize("method", ALL)
def test_bounds_hold_for_every_evaluated_sample(method):
    model, z0 = _system()
    low = torch.tensor([-0.2, -1.0])
    high = torch.tensor([0.1, 0.5])
    seen = []

    class Spy(LinearLatentModel):
        def rollout(self, z0, actions):
            seen.append(actions.detach().clone())
            return super().rollout(z0, actions)

    spy = Spy(model.A, model.B, model.goal, actor_gain=5.0)
    cfg = _cfg(method, samples=64, iterations=3, grad_steps=5, grad_lr=1.0, init_std=2.0, policy_prior_samples=4)
    p = make_planner(cfg, spy, {"reward": {}}, low, high)
    for _ in range(3):
        plan = p.plan(z0)
        assert ((plan.actions >= low - 1e-6) & (plan.actions <= high + 1e-6)).all()
    allx = torch.cat([s.reshape(-1, A) for s in seen])
    assert ((allx >= low - 1e-6) & (allx <= high + 1e-6)).all()


@pytest.mark.parametrize("method", SAMPLING)
def test_warm_start_reaches_the_same_cost_in_fewer_iterations(method):
    model, z0 = _system()
    cfg = _cfg(method, samples=128, iterations=8)
    warm = make_planner(cfg, model, {"reward": {}}, -3, 3)
    first = warm.plan(z0)
    z1 = model.step(z0[None], first.first_action[None])[0]
    p_warm = warm.plan(z1)
    p_cold = make_planner(cfg.replace(seed=1), model, {"reward": {}}, -3, 3).plan(z1)
    # "The same cost": within 2% of the best the cold start finds in all its iterations.
    target = 1.02 * p_cold.stats[-1]["best_cost"]
    k_cold = next(i for i, s in enumerate(p_cold.stats) if s["best_cost"] <= target)
    k_warm = next(i for i, s in enumerate(p_warm.stats) if s["best_cost"] <= target)
    assert k_warm < k_cold, (p_warm.stats, p_cold.stats)


def _quadratic_planner(method_cfg):
    model, z0 = _system()
    # Bounds tight enough that projection is active for some steps.
    return make_planner(method_cfg, model, {"reward": {}, "magnitude": {"weight": 0.1}}, -0.5, 0.5), z0


def test_projected_gradient_descent_is_monotone_with_lr_one_over_L():
    """Convex L-smooth cost + projected GD with lr <= 1/L: every iterate's cost is <= the last."""
    p, z0 = _quadratic_planner(_cfg("gradient", grad_optimizer="sgd", grad_restarts=1, grad_steps=40))
    problem = Problem(p.model, p.objectives, p._center, p._half, z0, 1.0, H)
    hess = torch.autograd.functional.hessian(lambda u: problem.evaluate(u.reshape(1, H, A))[0], torch.zeros(H * A))
    L = float(torch.linalg.eigvalsh(hess).max())
    p.update_config({"grad_lr": 1.0 / L})
    plan = p.plan(z0)
    costs = [s["cost"] for s in plan.stats]
    assert len(costs) == 41
    for prev, nxt in zip(costs, costs[1:]):
        assert nxt <= prev + 1e-5 * abs(prev)
    assert costs[-1] < costs[0]
    # The projected-GD fixed point is the constrained optimum: compare with a long run.
    p.reset()
    p.update_config({"grad_steps": 400})
    assert plan.predicted_cost == pytest.approx(p.plan(z0).predicted_cost, rel=1e-2)


def test_adam_tracks_best_so_far_which_never_rises():
    """Adam is not monotone per iterate; the tracked best (what the plan returns) is."""
    p, z0 = _quadratic_planner(_cfg("gradient", grad_lr=0.3, grad_restarts=3, grad_steps=30))
    plan = p.plan(z0)
    best = [s["best_cost"] for s in plan.stats]
    assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))
    assert plan.predicted_cost == pytest.approx(best[-1])
    assert best[-1] <= min(s["cost"] for s in plan.stats)
    assert best[-1] < best[0]


def test_cem_gradient_refines_cem():
    model, z0 = _system()
    cfg = _cfg("cem", samples=64, iterations=3)
    cem = make_planner(cfg, model, {"reward": {}}, -3, 3).plan(z0)
    ref = make_planner(cfg.replace(method="cem_gradient", grad_steps=20), model, {"reward": {}}, -3, 3).plan(z0)
    assert ref.predicted_cost <= cem.predicted_cost
    assert any(s.get("phase") == "gradient" for s in ref.stats)


@pytest.mark.parametrize("method", ALL)
def test_same_seed_same_plan_and_seed_matters(method):
    model, z0 = _system()
    cfg = _cfg(method, samples=64, iterations=3, grad_steps=5, grad_restarts=3)
    runs = []
    for seed in (7, 7, 8):
        p = make_planner(cfg.replace(seed=seed), model, {"reward": {}}, -1, 1)
        runs.append([p.plan(z0).actions for _ in range(2)])
    for a, b in zip(runs[0], runs[1]):
        assert torch.equal(a, b)
    if method != "gradient":  # gradient restart 0 is deterministic; others differ by seed
        assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2]))
    p = make_planner(cfg.replace(seed=7), model, {"reward": {}}, -1, 1)
    p.plan(z0)
    p.reset()
    assert torch.equal(p.plan(z0).actions, runs[0][0])  # reset re-seeds and forgets the warm start


def test_policy_prior_seeds_the_search():
    """With one tiny iteration, the actor's rollout (a good controller here) sets the cost."""
    model, z0 = _system()
    model.actor_gain = 1.0
    cfg = _cfg("cem", samples=8, elites=2, keep_elites=0, iterations=1, policy_prior_samples=2, init_std=2.0)
    p = make_planner(cfg, model, {"reward": {}}, -1, 1)
    problem = Problem(model, p.objectives, p._center, p._half, z0, 1.0, H)
    z, us = z0[None], []
    for _ in range(H):
        us.append(model.actor(z))
        z = model.step(z, us[-1])
    prior_cost = float(problem.evaluate(torch.stack(us, 1))[0])
    with_prior = p.plan(z0)
    assert with_prior.predicted_cost <= prior_cost + 1e-5


def test_update_config_keeps_warm_start_and_rejects_bad_values():
    model, z0 = _system()
    p = make_planner(_cfg("cem", samples=64, iterations=2), model, {"reward": {}}, -1, 1)
    p.plan(z0)
    warm = p.warm_start.clone()
    p.update_config({"samples": 32, "elites": 8, "method": "mppi"})
    torch.testing.assert_close(p.warm_start, warm)
    p.update_config({"horizon": 6})
    assert p.warm_start.shape == (6, A)
    torch.testing.assert_close(p.warm_start[:H], warm)
    with pytest.raises(ValueError, match="samples=0"):
        p.update_config({"samples": 0})
    assert p.cfg.samples == 32 and p.cfg.method == "mppi"  # a rejected update changes nothing
    plan = p.plan(z0)
    assert plan.actions.shape == (6, A) and plan.method == "mppi"
    p.update_objectives({"reward": {}, "smoothness": {"weight": 0.1}})
    assert p.plan(z0).ok


def test_bad_inputs_raise_and_nan_models_give_a_not_ok_plan():
    model, z0 = _system()
    with pytest.raises(ValueError, match="action_low has 3 values"):
        make_planner(None, model, None, [-1, -1, -1], 1)
    with pytest.raises(ValueError, match="action_high must exceed"):
        make_planner(None, model, None, 1, -1)
    p = make_planner(PlannerConfig(samples=32, elites=4), model, None, -1, 1)
    with pytest.raises(ValueError, match=r"z0 must be \[3\]"):
        p.plan(torch.zeros(5))

    class NaNModel(LinearLatentModel):
        def rollout(self, z0, actions):
            return super().rollout(z0, actions) * float("nan")

    bad = make_planner(PlannerConfig(samples=32, elites=4), NaNModel(model.A, model.B), None, -1, 1)
    plan = bad.plan(z0)
    assert not plan.ok
    assert torch.isfinite(plan.actions).all()  # still within bounds, but flagged unusable


def test_carried_elites_are_not_rolled_out_again_and_population_decays():
    model, z0 = _system()
    cfg = _cfg("cem", samples=100, elites=10, keep_elites=6, iterations=4, population_decay=0.5)
    plan = make_planner(cfg, model, {"reward": {}}, -1, 1).plan(z0)
    sizes = [s["samples"] for s in plan.stats]
    assert sizes == [100, 50, 25, 12]  # 100 * 0.5^i, never below the elites
    rolled = 100 + (50 - 6) + (25 - 6) + (12 - 6) + 1  # carried elites reuse their cost; +1: final mean
    assert plan.rollout_steps == rolled * H
    best = [s["best_cost"] for s in plan.stats]
    assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))
    assert plan.predicted_cost <= best[-1]


def test_switching_methods_live_keeps_planning():
    """One planner, method changed by update_config between plans (as the ROS node does)."""
    model, z0 = _system()
    p = make_planner(_cfg("cem", samples=32, elites=4, iterations=2, grad_steps=3), model, {"reward": {}}, -1, 1)
    costs = []
    for method in ["cem", "gradient", "mppi", "cem_gradient", "cem", "gradient"]:
        p.update_config({"method": method})
        plan = p.plan(z0)
        assert plan.ok and plan.method == method
        costs.append(plan.predicted_cost)
    assert all(torch.isfinite(torch.tensor(costs)))


def test_weighted_elites_span_the_plain_mean_and_the_best_elite():
    from moejepa_ros.planning.cem import cem_update

    g = torch.Generator().manual_seed(0)
    u = torch.rand(50, H, A, generator=g) * 2 - 1
    cost = torch.rand(50, generator=g) * 10
    plain = PlannerConfig(elites=8, samples=50)
    mean, std, _ = cem_update(u, cost, plain)
    hot_mean, hot_std, _ = cem_update(u, cost, plain.replace(weighted_elites=True, temperature=1e6))
    torch.testing.assert_close(hot_mean, mean)  # a hot softmax weighs the elites equally
    torch.testing.assert_close(hot_std, std)
    cold_mean, cold_std, fit = cem_update(u, cost, plain.replace(weighted_elites=True, temperature=1e-6))
    torch.testing.assert_close(cold_mean, u[torch.argmin(cost)])  # a cold one keeps the best elite alone
    assert float(cold_std.max()) < 1e-6 and float(fit) == pytest.approx(float(cost.min()))
    mid_mean, _, _ = cem_update(u, cost, plain.replace(weighted_elites=True, temperature=1.0))
    assert float((mid_mean - u[torch.argmin(cost)]).norm()) < float((mean - u[torch.argmin(cost)]).norm())


@pytest.mark.parametrize("execute", ["mean", "elite"])
def test_mean_and_elite_execution_still_find_the_optimum(execute):
    """TD-MPC's choices (weighted elites, a drawn elite executed) converge on the closed-form optimum."""
    model, z0 = _system()
    a_star = _optimum(model, z0, H)
    cfg = _cfg("cem", execute=execute, weighted_elites=True)
    plan = make_planner(cfg, model, {"reward": {}}, -3.0, 3.0).plan(z0)
    torch.testing.assert_close(plan.first_action, a_star[0], atol=0.1, rtol=0)
    assert plan.ok


def test_execute_returns_the_mean_or_a_last_iteration_elite():
    from moejepa_ros.planning.cem import cem_update
    from moejepa_ros.planning.sampling import Buffers, sampling_optimize

    model, z0 = _system()
    base = _cfg("cem", samples=64, elites=8, keep_elites=0, iterations=3, init_std=1.0)
    p = make_planner(base, model, {"reward": {}}, -1, 1)
    problem = Problem(model, p.objectives, p._center, p._half, z0, 1.0, H)
    mean0 = torch.zeros(H, A)

    def run(cfg, seed=0):
        return sampling_optimize(problem, cfg, mean0, torch.Generator().manual_seed(seed), cem_update, Buffers())

    best_u, best_cost, *_ = run(base)
    u, cost, _, mean, _ = run(base.replace(execute="mean"))
    torch.testing.assert_close(u, mean)
    assert cost == pytest.approx(float(problem.evaluate(mean[None])[0]), rel=1e-5) and cost >= best_cost - 1e-6
    # execute=elite: a drawn elite's cost is its own, never below the best sample seen; a cold draw is
    # the last iteration's argmin, a hot one varies with the generator's seed.
    drawn = [run(base.replace(execute="elite", temperature=1e3), seed) for seed in range(6)]
    for u, cost, *_ in drawn:
        assert cost == pytest.approx(float(problem.evaluate(u[None])[0]), rel=1e-5) and cost >= best_cost - 1e-6
    assert any(c > stats[-1]["min_cost"] + 1e-6 for _, c, stats, *_ in drawn)  # not always the argmin
    cold_u, cold_cost, stats, *_ = run(base.replace(execute="elite", temperature=1e-6))
    assert cold_cost == pytest.approx(stats[-1]["min_cost"], rel=1e-5)


def test_execute_is_validated():
    with pytest.raises(ValueError, match="execute"):
        PlannerConfig(execute="argmax").validate()


@pytest.mark.parametrize("method", SAMPLING)
def test_last_problem_scores_the_plan_it_made(method):
    """`last_problem` is the objective the last plan optimised: it scores the plan at its predicted cost, the
    closed-form optimum no worse, and another start's plan is scored on that start."""
    model, z0 = _system()
    bound = 3.0
    p = make_planner(_cfg(method), model, {"reward": {}}, -bound, bound)
    assert p.last_problem is None
    plan = p.plan(z0)
    u = (plan.actions / bound)[None]  # command units -> normalised (symmetric bounds)
    with torch.inference_mode():
        assert float(p.last_problem.evaluate(u)[0]) == pytest.approx(plan.predicted_cost, rel=1e-5, abs=1e-5)
        best = float(p.last_problem.evaluate((_optimum(model, z0, H) / bound)[None])[0])
    assert best <= plan.predicted_cost + 1e-4
    p.plan(z0 + 1.0)
    torch.testing.assert_close(p.last_problem.z0, z0 + 1.0)
    p.reset()
    assert p.last_problem is None
