"""Objectives: each term's value, weighted sums, registry errors, and PlannerConfig validation."""

import math

import pytest
import torch

from moejepa_ros.planning import (
    DEFAULT_OBJECTIVES,
    LinearLatentModel,
    PlannerConfig,
    Rollout,
    build_objectives,
    make_planner,
)
from moejepa_ros.planning.config import METHODS


def _rollout(n=5, h=3, d=4, a=2, goal=True, prev=True, gamma=0.9):
    g = torch.Generator().manual_seed(0)
    model = LinearLatentModel(torch.eye(d) * 0.8, torch.randn(d, a, generator=g), goal=torch.ones(d))
    z0 = torch.randn(d, generator=g)
    actions = torch.randn(n, h, a, generator=g)
    latents = model.rollout(z0.expand(n, -1), actions)
    return Rollout(
        model=model,
        z0=z0,
        latents=latents,
        actions=actions,
        discounts=gamma ** torch.arange(h, dtype=torch.float32),
        gamma=gamma,
        goal_z=torch.randn(d, generator=g) if goal else None,
        prev_action=torch.randn(a, generator=g) if prev else None,
    )


def test_each_term_matches_its_definition():
    r = _rollout()
    n, h, _ = r.actions.shape
    objs = build_objectives(
        {
            "reward": {"terminal_value": True},
            "goal": {"metric": "sq_l2", "every_step": True},
            "cost": {"every_step": False},
            "magnitude": {},
            "smoothness": {},
        }
    )
    _, terms = objs.evaluate(r)
    m, disc = r.model, r.discounts
    for i in range(n):
        z_prev, ret, goal_c = r.z0, 0.0, 0.0
        for t in range(h):
            ret += disc[t] * m.reward(z_prev, r.actions[i, t])
            goal_c += disc[t] * (r.latents[i, t] - r.goal_z).pow(2).sum()
            z_prev = r.latents[i, t]
        ret += r.gamma**h * m.value(r.latents[i, -1])
        assert terms["reward"][i] == pytest.approx(-float(ret), rel=1e-5)
        assert terms["goal"][i] == pytest.approx(float(goal_c), rel=1e-5)
        assert terms["cost"][i] == pytest.approx(float(m.cost(r.latents[i, -1])), rel=1e-5)
        assert terms["magnitude"][i] == pytest.approx(float(r.actions[i].pow(2).sum()), rel=1e-5)
        seq = torch.cat([r.prev_action[None], r.actions[i]])
        assert terms["smoothness"][i] == pytest.approx(float(seq.diff(dim=0).pow(2).sum()), rel=1e-5)


def test_smoothness_without_previous_action_skips_first_step():
    r = _rollout(prev=False)
    c = build_objectives({"smoothness": {}}).evaluate(r)[1]["smoothness"]
    torch.testing.assert_close(c, r.actions.diff(dim=1).pow(2).sum((1, 2)))


@pytest.mark.parametrize("metric", ["l2", "sq_l2", "l1", "cosine"])
def test_goal_metrics(metric):
    r = _rollout()
    c = build_objectives({"goal": {"metric": metric}})(r)
    d = r.latents[:, -1] - r.goal_z
    want = {
        "l2": d.norm(dim=-1),
        "sq_l2": d.pow(2).sum(-1),
        "l1": d.abs().sum(-1),
        "cosine": 1 - torch.nn.functional.cosine_similarity(r.latents[:, -1], r.goal_z[None], dim=-1),
    }[metric]
    torch.testing.assert_close(c, want)
    assert c.shape == (r.actions.shape[0],)


def test_weighted_objectives_add_up_and_disabled_ones_do_not_count():
    r = _rollout()
    spec = {
        "reward": {"weight": 0.5},
        "goal": {"weight": 2.0},
        "magnitude": {"weight": 0.25},
        "smoothness": {"weight": 3.0, "enabled": False},
    }
    total, terms = build_objectives(spec).evaluate(r)
    assert set(terms) == {"reward", "goal", "magnitude"}
    want = 0.5 * terms["reward"] + 2.0 * terms["goal"] + 0.25 * terms["magnitude"]
    torch.testing.assert_close(total, want)
    # Each term equals the objective alone (composition adds, nothing leaks between terms).
    for name in ("reward", "goal", "magnitude"):
        alone = build_objectives({name: {"weight": 1.0}})(r)  # the declared default weight differs per objective
        torch.testing.assert_close(alone, terms[name])


def test_unknown_objective_and_parameter_errors_list_the_known_ones():
    with pytest.raises(ValueError) as e:
        build_objectives({"rewrd": {}})
    msg = str(e.value)
    assert "rewrd" in msg and all(k in msg for k in DEFAULT_OBJECTIVES)
    with pytest.raises(ValueError, match=r"unknown parameter.*'metrc'.*metric"):
        build_objectives({"goal": {"metrc": "l1"}})
    with pytest.raises(ValueError, match="metric='l3'"):
        build_objectives({"goal": {"metric": "l3"}})
    with pytest.raises(ValueError, match="weight"):
        build_objectives({"reward": {"weight": float("nan")}})
    with pytest.raises(ValueError, match="enabled"):
        build_objectives({"reward": {"enabled": "yes"}})


def test_defaults_round_trip_and_model_head_checks():
    objs = build_objectives(None)
    assert objs.to_dict() == DEFAULT_OBJECTIVES
    assert build_objectives(objs.to_dict()).to_dict() == DEFAULT_OBJECTIVES

    class RolloutOnly:
        latent_dim, action_dim = 2, 1

        def rollout(self, z0, actions):
            return z0[:, None].expand(-1, actions.shape[1], -1) + actions.sum(-1, keepdim=True)

    with pytest.raises(ValueError, match=r"'reward' needs model.reward\(\)"):
        make_planner(None, RolloutOnly(), None, -1, 1)
    with pytest.raises(ValueError, match="none enabled"):
        make_planner(None, RolloutOnly(), {"reward": {"enabled": False}}, -1, 1)
    p = make_planner(None, RolloutOnly(), {"goal": {}}, -1, 1)
    with pytest.raises(ValueError, match="no goal_z"):
        p.plan(torch.zeros(2))
    assert p.plan(torch.zeros(2), goal_z=torch.ones(2)).ok


# ---- PlannerConfig -------------------------------------------------------------------------
def test_config_round_trip_and_coercion():
    cfg = PlannerConfig(method="mppi", samples=64)
    assert PlannerConfig.from_dict(cfg.to_dict()) == cfg
    c2 = PlannerConfig.from_dict({"temperature": 1, "horizon": 7.0})  # YAML ints / floats
    assert isinstance(c2.temperature, float) and c2.horizon == 7 and isinstance(c2.horizon, int)
    assert PlannerConfig().validate() == PlannerConfig()


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"samples": 0}, r"samples=0 is invalid: must be an integer >= 1"),
        ({"horizon": -3}, r"horizon=-3 is invalid"),
        ({"method": "ilqr"}, r"method='ilqr' is invalid: must be one of \['cem', 'mppi'"),
        ({"elites": 300}, r"elites=300 is invalid: must be <= samples \(256\)"),
        ({"min_std": 3.0}, r"min_std=3.0 is invalid: must be <= max_std"),
        ({"momentum": 1.0}, r"momentum=1.0 is invalid: must be in \[0, 1\)"),
        ({"gamma": 0.0}, r"gamma=0.0 is invalid"),
        ({"temperature": float("inf")}, r"temperature=inf is invalid"),
        ({"policy_prior_samples": 256}, r"policy_prior_samples=256 is invalid"),
        ({"keep_elites": 255}, r"keep_elites=255 is invalid"),
        ({"population_decay": 0.0}, r"population_decay=0.0 is invalid: must be in \(0, 1\]"),
        ({"grad_optimizer": "lbfgs"}, r"grad_optimizer='lbfgs' is invalid"),
        ({"warm_start": "yes"}, r"warm_start='yes' is invalid: must be a bool"),
        ({"samples": 2.5}, r"samples=2.5 is invalid"),
        ({"sample": 10}, r"unknown field\(s\) \['sample'\]; known: .*'samples'"),
    ],
)
def test_config_validation_names_field_and_value(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        PlannerConfig.from_dict(change)


def test_methods_listed():
    assert METHODS == ("cem", "mppi", "gradient", "cem_gradient")
    assert math.isfinite(PlannerConfig().temperature)


def test_every_config_field_has_help_text():
    import dataclasses

    from moejepa_ros.planning.config import FIELD_HELP

    assert set(FIELD_HELP) == {f.name for f in dataclasses.fields(PlannerConfig)}
    assert all(FIELD_HELP.values())


# ---- declarations and the registry --------------------------------------------------------
def test_every_objective_module_registers_its_objectives_and_declares_valid_defaults():
    import importlib
    import inspect
    import pkgutil

    from moejepa_ros.planning import objectives as pkg
    from moejepa_ros.planning.objectives import REGISTRY, Objective, default_spec

    found = {}
    for m in pkgutil.iter_modules(pkg.__path__):  # a new module in the package needs no list entry
        mod = importlib.import_module(f"{pkg.__name__}.{m.name}")
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Objective) and cls.__dict__.get("name") and cls.__module__ == mod.__name__:
                found[cls.name] = cls
    assert found and {n: REGISTRY[n] for n in found} == found
    assert DEFAULT_OBJECTIVES == {n: default_spec()[n] for n in found}
    for name, cls in found.items():
        declared = cls.declared()
        assert list(declared)[:2] == ["enabled", "weight"] and all(o.help for o in declared.values())
        assert cls().to_dict() == {k: o.default for k, o in declared.items()}  # defaults pass their own checks


def test_build_objectives_fills_declared_defaults_and_names_bad_values():
    objs = build_objectives({"cost": {}, "smoothness": {"enabled": False}})
    assert objs.to_dict() == {
        "cost": {**DEFAULT_OBJECTIVES["cost"], "enabled": True},  # named: on unless it says otherwise
        "smoothness": DEFAULT_OBJECTIVES["smoothness"],
    }
    assert objs["cost"].weight == 0.1 and build_objectives({"goal": {"weight": 2}})["goal"].weight == 2.0
    for spec, pattern in [
        ({"goal": {"every_step": "yes"}}, r"objective 'goal': every_step='yes' is invalid: must be a bool"),
        ({"goal": {"metric": 3}}, r"metric=3 is invalid: must be a string"),
        ({"reward": {"weight": -1.0}}, r"objective 'reward': weight=-1.0 is invalid: must be in \[0, 1e\+06\]"),
        ({"reward": {"weight": "1"}}, r"weight='1' is invalid: must be a number"),
        ({"reward": {"terminal_value": 1}}, r"terminal_value=1 is invalid: must be a bool"),
        ({"cost": {"horizon": 3}}, r"objective 'cost': unknown parameter\(s\) \['horizon'\]; known: \['enabled'"),
        ({"toy": {}}, r"unknown objective 'toy'; known objectives: \['cost', 'goal'"),
        ({"goal": 1.0}, r"objective 'goal': settings must be a mapping"),
    ]:
        with pytest.raises(ValueError, match=pattern) as e:
            build_objectives(spec)
        assert "\n" not in str(e.value)


def test_a_bad_declaration_is_refused_when_the_class_is_defined():
    from moejepa_ros.planning.objectives import REGISTRY, Objective, Option

    before = dict(REGISTRY)
    with pytest.raises(ValueError, match=r"objective 'goal' of .*Impostor is already registered by .*GoalObjective"):

        class Impostor(Objective):
            name = "goal"

    with pytest.raises(ValueError, match=r"`weight` is declared by weight_default"):

        class Reweighed(Objective):
            name = "reweighed"
            options = {"weight": Option(1.0, "again")}

    with pytest.raises(ValueError, match=r"objective 'ranged': gain=5.0 is invalid: must be in \[0, 1\]"):

        class Ranged(Objective):
            name = "ranged"
            options = {"gain": Option(5.0, "a gain", low=0.0, high=1.0)}

    with pytest.raises(ValueError, match=r"objective name 'Bad-Name'"):

        class BadName(Objective):
            name = "Bad-Name"

    assert REGISTRY == before


def test_plugin_module_registers_an_objective_that_plans(tmp_path, monkeypatch):
    from moejepa_ros.planning.objectives import REGISTRY, load_plugins

    (tmp_path / "toy_plugin_objective.py").write_text(TOY_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_plugins(["toy_plugin_objective"]) == ["toy"]
        assert load_plugins(["toy_plugin_objective"]) == []  # importing again registers nothing new
        r = _rollout()
        toy = build_objectives({"toy": {"target": 0.5}})
        torch.testing.assert_close(toy(r), 0.5 * (r.actions[:, 0] - 0.5).pow(2).sum(-1))
        with pytest.raises(ValueError, match=r"target=2.0 is invalid: must be in \[-1, 1\]"):
            build_objectives({"toy": {"target": 2.0}})
    finally:
        REGISTRY.pop("toy", None)
        monkeypatch.delitem(__import__("sys").modules, "toy_plugin_objective", raising=False)
    with pytest.raises(
        ValueError,
        match=r"objective plugin 'no_such_objective_module' failed to import: "
        r"ModuleNotFoundError",
    ):
        load_plugins(["no_such_objective_module"])


# One file is a whole objective: the plugin tests (here and test_ros_planner_node.py) write it out.
TOY_PLUGIN = '''
"""A toy objective: pull the first planned action towards `target`."""
from moejepa_ros.planning.objectives import Objective, Option


class ToyObjective(Objective):
    """(a_0 - target)^2 summed over action dimensions."""

    name = "toy"
    enabled_default = True
    weight_default = 0.5
    options = {"target": Option(0.25, "the value the first action is pulled towards", low=-1.0, high=1.0)}

    def __call__(self, r):
        return (r.actions[:, 0] - self.target).pow(2).sum(-1)
'''
