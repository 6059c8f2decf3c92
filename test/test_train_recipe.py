"""The demo's training recipe (config/recipes/two_rooms_demo.yaml) as `moejepa-train` command lines."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from training.config import ConfigError
from training.recipe import load_recipe, main, train_argv

DEMO = load_recipe("two_rooms_demo")

# What the recipe ran when it was code (moejepa_ros/ros/demo.py's train_argv, run dir /RUN, run.threads=1).
EXPECTED = [
    line.split()
    for line in (
        "collect -c two_rooms run.out_dir=/RUN run.threads=1",
        "fit -c two_rooms run.out_dir=/RUN run.threads=1",
        "collect -c two_rooms -c two_rooms_goal run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/goal",
        "refine -c two_rooms -c two_rooms_goal run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/goal "
        "refine.checkpoint=/RUN/fit/model.safetensors",
        "goal -c two_rooms -c two_rooms_goal run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/goal",
        "export -c two_rooms run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/goal",
        "collect -c two_rooms -c two_rooms_goal run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/push "
        "collect.policy_kwargs.push_steps=4 collect.policy_kwargs.step_max=2.45 "
        "collect.policy_kwargs.step_mean=1.2",
        "refine -c two_rooms -c two_rooms_goal run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/contact "
        "data.bags=[/RUN/goal/collect/bags,/RUN/push/collect/bags] "
        "refine.checkpoint=/RUN/goal/export/model.safetensors refine.steps=20000 refine.lr=3e-4",
        "export -c two_rooms run.out_dir=/RUN run.threads=1 run.out_dir=/RUN/contact",
    )
]


def test_the_demo_recipe_expands_to_the_same_commands_as_before():
    argvs = [train_argv(step, Path("/RUN"), ["run.threads=1"]) for step in DEMO.steps]
    assert all(a[:3] == [sys.executable, "-m", "training.cli"] for a in argvs)
    assert [a[3:] for a in argvs] == EXPECTED
    assert DEMO.export == "contact/export/model.safetensors"
    assert DEMO.commands == ("collect", "fit", "refine", "goal", "export")


def test_the_printed_commands_are_the_recipe(capsys):
    assert main(["two_rooms_demo", "/RUN", "run.threads=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "# final model: /RUN/contact/export/model.safetensors"
    assert lines[0] == "python -m training.cli collect -c two_rooms run.out_dir=/RUN run.threads=1"
    assert "'data.bags=[/RUN/goal/collect/bags,/RUN/push/collect/bags]'" in lines[7]  # quoted for a shell
    assert len(lines) == len(EXPECTED) + 1


@pytest.mark.parametrize(
    "text, bad",
    [
        ("configs: [two_rooms]\nsteps: [{command: fitt}]\nexport: x", "'fitt'"),
        ("configs: [two_rooms]\nsteps: [{command: fit, override: [a=1]}]\nexport: x", "steps[0]"),
        ("configs: two_rooms\nsteps: [{command: fit}]\nexport: x", "'two_rooms'"),
        ("configs: [two_rooms]\nsteps: [{command: fit}]", "export"),
    ],
)
def test_a_bad_recipe_names_the_bad_entry(tmp_path, text, bad):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(bad)):
        load_recipe(path)


def test_an_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ConfigError, match="two_rooms_demo"):
        load_recipe("no_such_recipe")


def test_robot_recipe_is_what_the_readme_shows_and_loads_with_only_the_bags():
    """README's "Train on your robot" lists the robot recipe's steps, each runnable with data.bags alone."""
    from training.config import load_config

    robot = load_recipe("robot")
    assert robot.commands == ("fit", "refine", "goal", "pose", "evaluate", "export")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = re.findall(
        r"^   moejepa-train (\w+) +-c robot run\.out_dir=runs/my_robot data\.bags=\[/data/bags\]", readme, re.M
    )
    assert tuple(shown) == robot.commands
    for step in robot.steps:
        cfg = load_config(list(step.configs), ["data.bags=[/data/bags]", *step.overrides])
        assert cfg.data.topics == {"preset": "robot"} and cfg.fit.reach_weight >= 0
