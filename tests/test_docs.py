"""The docs say what the code does: every command in the README, every config key documented,
every flag code explained, asked about and defaulted (in the manner of sqlite-utils' test_docs)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel

from leadprep.cli import app
from leadprep.config import Config
from leadprep.measures import MEASURES
from leadprep.questions import load_bank
from leadprep.signals import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
SIGNALS_DOC = (ROOT / "docs" / "signals.md").read_text(encoding="utf-8")


def _commands(group: typer.Typer, prefix: str = "leadprep") -> list[str]:
    names = []
    for command in group.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        names.append(f"{prefix} {name}")
    for sub in group.registered_groups:
        names += _commands(sub.typer_instance, f"{prefix} {sub.name}")
    return names


@pytest.mark.parametrize("command", _commands(app))
def test_every_command_is_in_the_readme(command):
    assert re.search(rf"(^|`|\s){re.escape(command)}\b", README, re.M), f"README: {command}"


def _models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue  # set by leadprep while loading, not by users
        key = info.alias or name
        path = f"{prefix}{key}"
        keys.append(path)
        for inner in _models(info.annotation):
            keys += _keys(inner, f"{path}.")
    return keys


def _documented(path: str) -> bool:
    """A key is documented when the example config or the README names it in its section."""
    *parents, leaf = path.split(".")
    if parents and parents[0] == "signals":
        return leaf in SIGNALS_DOC  # docs/signals.md is where thresholds are explained
    key = re.compile(rf"(^|[\s{{,`]){re.escape(leaf)}[:`]", re.M)
    return bool(key.search(EXAMPLE) or key.search(README))


@pytest.mark.parametrize("key", _keys(Config))
def test_every_config_key_is_documented(key):
    assert _documented(key), f"{key}: say what it does in config.example.yaml or the README"


@pytest.mark.parametrize("code", list(REGISTRY))
def test_every_signal_is_explained_asked_about_and_has_defaults(code):
    signal = REGISTRY[code]
    row = next(
        (line for line in SIGNALS_DOC.splitlines() if line.startswith(f"| `{code}` |")), None
    )
    assert row is not None, f"docs/signals.md has no row for {code}"
    for key in signal.settings.model_fields:
        if key != "enabled":
            assert f"`{key}`" in row, f"docs/signals.md: {code} does not explain {key}"
    signal.settings()  # every threshold has a default: a config may leave the signal out
    bank = load_bank(ROOT / "templates" / "questions.yaml")
    assert bank.explore.get(code), f"templates/questions.yaml asks nothing about {code}"


@pytest.mark.parametrize("key", list(MEASURES))
def test_every_measure_is_defined_in_the_readme_as_the_code_says(key):
    """One set of definitions: the README's table is the measures' own rows, word for word."""
    assert MEASURES[key].readme_row() in README, (
        f"README, 'Tracking the results': replace the row of {key} with\n"
        f"  {MEASURES[key].readme_row()}"
    )
