"""The tests mirror the code: one folder per app (or part of the repository), and every test that
starts a server process (gunicorn, bin/entrypoint serve, a private PostgreSQL, Chromium, nginx)
in tests/system/, marked ``system`` so that `make test-fast` leaves it out. Every tests/ path
the docs, the Makefile or a comment names exists."""

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

TESTS = REPO / "tests"
SYSTEM = TESTS / "system"
MODULES = sorted(TESTS.rglob("test_*.py"))
# What starts a server: these helpers, and the session servers of tests/system/conftest.py.
STARTERS = {
    "tests.browser": {"chromium"},
    "tests.servers.entrypoint": {"entrypoint_server"},
    "tests.servers.gunicorn": {"gunicorn", "start"},
    "tests.servers.postgres": {"private_postgres"},
}
SERVER_FIXTURES = {"served", "demo_served"}
TESTS_PATH = re.compile(r"tests/[\w/.-]*\w")


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def marks_of(tree: ast.Module) -> set[str]:
    """The marks a module's ``pytestmark`` names (``pytest.mark.NAME``, alone or in a list)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute):
                    inner = sub.value
                    if isinstance(inner, ast.Attribute) and inner.attr == "mark":
                        found.add(sub.attr)
    return found


def starts_a_server(tree: ast.Module) -> list[str]:
    """The server starters a module imports and the server fixtures its tests ask for."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in STARTERS:
            found += [a.name for a in node.names if a.name in STARTERS[node.module]]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [a.arg for a in node.args.args if a.arg in SERVER_FIXTURES]
    return found


def test_every_test_module_is_in_a_folder() -> None:
    assert MODULES
    assert [relative(m) for m in MODULES if m.parent == TESTS] == []


@pytest.mark.parametrize(
    "module", sorted(SYSTEM.rglob("test_*.py")), ids=lambda p: str(p.relative_to(SYSTEM))
)
def test_system_modules_are_marked_system(module: Path) -> None:
    assert "system" in marks_of(ast.parse(module.read_text(), str(module)))


def test_only_system_modules_start_servers() -> None:
    outside = {
        relative(module): starters
        for module in MODULES
        if SYSTEM not in module.parents
        and (starters := starts_a_server(ast.parse(module.read_text(), str(module))))
    }
    assert outside == {}, "move them to tests/system/ (pytestmark = pytest.mark.system)"


def named_test_paths() -> list[tuple[str, str]]:
    """(file, path) for each tests/ path named in the repository's text outside tests/."""
    skipped = {".git", ".venv", "var", "site", "tests", "artifacts", ".pytest_cache", ".ruff_cache"}
    found = []
    for top in sorted(REPO.iterdir()):
        if top.name in skipped:
            continue
        for path in sorted(top.rglob("*")) if top.is_dir() else [top]:
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            found += [(relative(path), named) for named in TESTS_PATH.findall(text)]
    return found


def test_every_named_test_path_exists() -> None:
    named = named_test_paths()
    assert any(path == "tests/docs/test_docs.py" for _, path in named)
    assert [(name, path) for name, path in named if not (REPO / path).exists()] == []
