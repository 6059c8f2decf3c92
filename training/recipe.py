"""A training recipe: `moejepa-train` steps kept as data in config/recipes/<name>.yaml.

The file gives the configs every step loads (`configs`), the `steps` (command, its own extra
configs, its `key=value` overrides; `{run}` stands for the run dir) and `export`, the final model
relative to the run dir. `python -m training.recipe NAME RUN [key=value ...]` prints the command
lines, so a README never keeps its own copy of them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from .cli import SECTIONS
from .config import ConfigError, resolve_config_path

STEP_KEYS = ("command", "configs", "overrides")


class Step(NamedTuple):
    """One `moejepa-train` call: the command, every -c config (the recipe's first) and its overrides."""

    command: str
    configs: tuple[str, ...]
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    name: str
    steps: tuple[Step, ...]
    export: str  # the final model, relative to the run dir

    @property
    def commands(self) -> tuple[str, ...]:
        """The distinct commands, in first-use order."""
        return tuple(dict.fromkeys(s.command for s in self.steps))


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def load_recipe(name: str | Path) -> Recipe:
    """A recipe file by path, or a bare name looked up in config/recipes/; errors name the bad entry."""
    path = Path(resolve_config_path(name, "recipes", "recipe"))
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or set(doc) != {"configs", "steps", "export"}:
        raise ConfigError(f"{path}: needs exactly the keys configs, steps, export (got {sorted(doc or {})})")
    base = _strings(doc["configs"], f"{path}: configs")
    if not isinstance(doc["steps"], list) or not doc["steps"]:
        raise ConfigError(f"{path}: steps must be a non-empty list, got {doc['steps']!r}")
    steps = []
    for i, s in enumerate(doc["steps"]):
        where = f"{path}: steps[{i}]"
        if not isinstance(s, dict) or "command" not in s or set(s) - set(STEP_KEYS):
            raise ConfigError(f"{where}: expected a mapping with command and optional configs/overrides, got {s!r}")
        if s["command"] not in SECTIONS:
            raise ConfigError(f"{where}: unknown command {s['command']!r}; known: {list(SECTIONS)}")
        steps.append(
            Step(
                s["command"],
                base + _strings(s.get("configs"), f"{where}.configs"),
                _strings(s.get("overrides"), f"{where}.overrides"),
            )
        )
    if not isinstance(doc["export"], str) or not doc["export"]:
        raise ConfigError(f"{path}: export must be a path relative to the run dir, got {doc['export']!r}")
    return Recipe(path.stem, tuple(steps), doc["export"])


def train_argv(step: Step, run: Path, extra: Sequence[str] = ()) -> list[str]:
    """One step as a `python -m training.cli` command line: run.out_dir={run}, then `extra`, then its overrides."""
    argv = [sys.executable, "-m", "training.cli", step.command]
    for c in step.configs:
        argv += ["-c", c]
    return argv + [f"run.out_dir={run}", *extra, *(o.format(run=run) for o in step.overrides)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.recipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", help="a name in config/recipes/ (e.g. two_rooms_demo) or a YAML path")
    ap.add_argument("run", type=Path, help="the run dir ({run})")
    ap.add_argument("extra", nargs="*", metavar="key=value", help="overrides for every step (e.g. run.threads=1)")
    a = ap.parse_args(argv)
    try:
        recipe = load_recipe(a.recipe)
    except ConfigError as e:
        print(f"training.recipe: {e}", file=sys.stderr)
        return 2
    for step in recipe.steps:
        print(shlex.join(["python", *train_argv(step, a.run, a.extra)[1:]]))
    print(f"# final model: {a.run / recipe.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
