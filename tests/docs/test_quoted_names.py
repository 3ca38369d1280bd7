"""What docs/integrator/ and docs/operator/ quote of the code exists: every file or folder of
the repository they name in backticks, every `python -m MODULE` they tell one to run, and
every dotted name of ours (`ml.decode.MAX_PIXELS`, `guard.sessions`). tests/ paths:
tests/project/test_test_layout.py."""

from __future__ import annotations

import importlib
import importlib.util
import re

import pytest

from tests.conftest import REPO

PAGES = sorted((REPO / "docs" / "integrator").glob("*.md"))
PAGES += sorted((REPO / "docs" / "operator").glob("*.md"))
OURS = ["accounts", "bench", "bin", "calibration", "capture", "console", "deploy", "facia_client"]
OURS += ["facia_site", "guard", "liveness", "ml", "telemetry"]
PATH = re.compile(rf"`((?:{'|'.join(OURS)})/[\w./-]*)`")
DOTTED = re.compile(rf"`((?:{'|'.join(OURS)})(?:\.\w+)+)`")
RUN = re.compile(r"python -m ([\w.]+)")


def text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def test_the_pages_quote_code() -> None:
    assert len(PATH.findall(text())) >= 10
    assert len(DOTTED.findall(text())) >= 5
    assert len(RUN.findall(text())) >= 8


@pytest.mark.parametrize("path", sorted(set(PATH.findall(text()))))
def test_each_quoted_path_exists(path: str) -> None:
    assert (REPO / path).exists(), path


@pytest.mark.parametrize("module", sorted(set(RUN.findall(text()))))
def test_each_module_to_run_exists(module: str) -> None:
    assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize("name", sorted(set(DOTTED.findall(text()))))
def test_each_dotted_name_exists(name: str) -> None:
    """The longest importable prefix is a module; the rest are its attributes."""
    parts = name.split(".")
    found: object = importlib.import_module(parts[0])
    for at, part in enumerate(parts[1:], start=2):
        if not hasattr(found, part) and hasattr(found, "__path__"):
            importlib.import_module(".".join(parts[:at]))
        assert hasattr(found, part), name
        found = getattr(found, part)
