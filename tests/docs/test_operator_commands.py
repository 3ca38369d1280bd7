"""The operator's pages name every management command of ours: admin.md lists each one with
exactly the options it takes, and deployment.md schedules each prune command that no other one
runs."""

import ast
import re
from pathlib import Path

import pytest
from django.core.management import BaseCommand, load_command_class

from tests.conftest import REPO

OPERATOR = REPO / "docs" / "operator"
APPS = ("accounts", "calibration", "capture", "facia_site", "guard", "liveness")


def commands() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in sorted((REPO / app / "management" / "commands").glob("[!_]*.py")):
            found[path.stem] = path
    return found


def commands_block() -> str:
    text = (OPERATOR / "admin.md").read_text()
    return text.split("## Commands", 1)[1].split("```", 2)[1]


def listed_in_admin_md() -> set[str]:
    return set(re.findall(r"^manage\.py (\w+)", commands_block(), re.MULTILINE))


def documented_options(name: str) -> set[str]:
    """The options admin.md writes for a command: its line and the indented lines after it,
    comments left out."""
    found: set[str] = set()
    current = None
    for line in commands_block().splitlines():
        if started := re.match(r"manage\.py (\w+)", line):
            current = started[1]
        elif not line.startswith(" "):
            current = None
        if current == name:
            found |= set(re.findall(r"--[a-z][a-z-]*", line.split("#", 1)[0]))
    return found


def options_taken(name: str) -> set[str]:
    """The command's own options (Django's common ones, --help and --verbosity... left out)."""
    path = commands()[name]
    parser = load_command_class(path.parents[2].name, name).create_parser("manage.py", name)
    common = BaseCommand().create_parser("manage.py", "base")
    shared = {o for action in common._actions for o in action.option_strings}
    own = {o for action in parser._actions for o in action.option_strings} - shared
    return {o for o in own if o.startswith("--")}


def test_admin_md_lists_every_command() -> None:
    assert commands()
    assert sorted(set(commands()) - listed_in_admin_md()) == []
    assert sorted(listed_in_admin_md() - set(commands())) == []


@pytest.mark.parametrize("name", sorted(commands()))
def test_admin_md_gives_each_command_its_options(name: str) -> None:
    assert documented_options(name) == options_taken(name)


def test_every_prune_command_is_scheduled_or_run_by_another() -> None:
    text = " ".join((OPERATOR / "deployment.md").read_text().split())
    sentence = re.search(r"Schedule (.+?)\.(?: |$)", text)
    assert sentence is not None
    scheduled = set(re.findall(r"`manage\.py (\w+)`", sentence[1]))
    for name, path in commands().items():
        if name.startswith("prune_"):
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert name in scheduled or "prune_checks`` runs this too" in doc, name
