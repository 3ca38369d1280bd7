"""The operator's pages name every management command of ours: admin.md lists each one, and
deployment.md schedules each prune command that no other one runs."""

import ast
import re
from pathlib import Path

from tests.conftest import REPO

OPERATOR = REPO / "docs" / "operator"
APPS = ("accounts", "calibration", "capture", "guard", "liveness")


def commands() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in sorted((REPO / app / "management" / "commands").glob("[!_]*.py")):
            found[path.stem] = path
    return found


def listed_in_admin_md() -> set[str]:
    text = (OPERATOR / "admin.md").read_text()
    block = text.split("## Commands", 1)[1].split("```", 2)[1]
    return set(re.findall(r"^manage\.py (\w+)", block, re.MULTILINE))


def test_admin_md_lists_every_command() -> None:
    assert commands()
    assert sorted(set(commands()) - listed_in_admin_md()) == []
    assert sorted(listed_in_admin_md() - set(commands())) == []


def test_every_prune_command_is_scheduled_or_run_by_another() -> None:
    text = " ".join((OPERATOR / "deployment.md").read_text().split())
    sentence = re.search(r"Schedule (.+?)\.(?: |$)", text)
    assert sentence is not None
    scheduled = set(re.findall(r"`manage\.py (\w+)`", sentence[1]))
    for name, path in commands().items():
        if name.startswith("prune_"):
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert name in scheduled or "prune_checks`` runs this too" in doc, name
