"""What CI covers: under CI a test whose tool (chromium, nginx) is missing fails instead of
skipping, `make test` runs every test (`make test-fast` only leaves out the system and slow
ones), and `make lint` passes on a machine with only requirements-dev.txt installed."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO, ci_requires_everything, skip_or_fail


@pytest.mark.parametrize(
    ("env", "fatal"),
    [
        ({}, False),
        ({"CI": ""}, False),
        ({"CI": "0"}, False),
        ({"CI": "false"}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "yes"}, True),
    ],
)
def test_ci_decides_whether_a_missing_tool_fails(env: dict[str, str], fatal: bool) -> None:
    assert ci_requires_everything(env) is fatal


def test_missing_tool_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="no nginx"):
        skip_or_fail("no nginx", {})


def test_missing_tool_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="no nginx .CI is set"):
        skip_or_fail("no nginx", {"CI": "true"})


def requirement_names(path: Path) -> set[str]:
    """The distributions a requirements file names, following ``-r`` includes."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(path.parent / line[2:].strip())
        elif line:
            names.add(Requirement(line).name)
    return names


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_by(names: set[str]) -> set[str]:
    """``names`` and everything they require (for this Python, no extras), canonical."""
    found: set[str] = set()
    pending = [canonical(n) for n in names]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            needed = Requirement(text)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                pending.append(canonical(needed.name))
    return found


def imported_modules(paths: list[Path]) -> set[str]:
    """Top-level names of every absolute import in these files."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def lint_sources() -> list[Path]:
    """The Python files `make lint` checks (the Makefile's SOURCES)."""
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^SOURCES := (.*)$", makefile, re.M)
    assert match is not None
    files: list[Path] = []
    for name in match.group(1).split():
        path = REPO / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def mypy_ignored() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    return {
        module
        for override in config.get("overrides", [])
        if override.get("ignore_missing_imports")
        for module in override["module"]
    }


def test_mypy_knows_every_import_that_lint_does_not_install() -> None:
    """A module the code imports from a package outside requirements-dev.txt (bench-only,
    quantize-only) is absent on a fresh machine: mypy must be told to ignore it, or `make lint`
    fails there (pyinstrument did)."""
    dev = installed_by(requirement_names(REPO / "requirements-dev.txt"))
    providers = metadata.packages_distributions()
    first_party = {path.name.removesuffix(".py") for path in REPO.iterdir()}
    missing = sorted(
        module
        for module in imported_modules(lint_sources())
        if module not in sys.stdlib_module_names
        and module not in first_party
        and not {canonical(d) for d in providers.get(module, [])} & dev
        and module not in mypy_ignored()
    )
    assert missing == [], f"add them to the mypy overrides in pyproject.toml: {missing}"


def test_ci_runs_the_tests_and_the_lint() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", script, re.M)  # the README's test command
    assert re.search(r"^make lint\b", script, re.M)
    done = subprocess.run(
        ["bash", "-n", str(REPO / ".ci" / "run")], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("given", "seen"), [(None, "true"), ("1", "1"), ("false", "false")])
def test_ci_runs_the_tests_under_ci_unless_the_runner_said_otherwise(
    tmp_path: Path, given: str | None, seen: str
) -> None:
    """Without CI set, a runner's failed apt-get turned the browser, scale-out, wrk, kubectl and
    ffmpeg tests into skips, and the run was green. A stand-in make records what it sees."""
    make = tmp_path / "make"
    make.write_text('#!/bin/sh\necho "$1 CI=${CI-unset}"\n')
    make.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ["PATH"] = f"{tmp_path}:{environ['PATH']}"
    if given is not None:
        environ["CI"] = given
    done = subprocess.run(
        [str(REPO / ".ci" / "run")], env=environ, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"test CI={seen}", f"lint CI={seen}"]


def recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    makefile = (REPO / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert match is not None, target
    return [line.strip() for line in match.group(1).splitlines()]


def test_make_test_runs_every_test_and_test_fast_leaves_out_system_and_slow() -> None:
    assert recipe("test") == ["$(BIN)/python -m pytest"]  # no -m, no path: everything
    assert recipe("test-fast") == ['$(BIN)/python -m pytest -m "not system and not slow"']
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert {line.split(":")[0] for line in markers["markers"]} == {"system", "slow"}
    assert "--strict-markers" in markers["addopts"]


# Skips that say a case does not apply (a SQLite-only check on PostgreSQL), not that something
# is missing: every other skip goes through skip_or_fail, so that CI fails instead.
NOT_APPLICABLE = {
    ("tests/conftest.py", "skip_or_fail"),
    ("tests/liveness/test_status_check_disk_full.py", "full_database"),
    ("tests/liveness/test_status_check.py", "test_a_locked_database_is_busy_not_full"),
    (
        "tests/system/test_db_freeze.py",
        "test_a_locked_sqlite_database_answers_503_within_its_busy_timeout",
    ),
}
SKIPS = {"skip", "skipif", "importorskip"}


class Skips(ast.NodeVisitor):
    """The functions (innermost; "<module>" outside any) that call pytest's skips."""

    def __init__(self) -> None:
        self.within = ["<module>"]
        self.found: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.within.append(node.name)
        self.generic_visit(node)
        self.within.pop()

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr in SKIPS:
            self.found.add(self.within[-1])
        self.generic_visit(node)


def test_every_skip_of_a_missing_tool_fails_under_ci() -> None:
    """The head-turn tests skipped without the clips, every PostgreSQL test without a server
    and four others with plain skips: a green CI could hide whole areas."""
    found = set()
    for path in sorted((REPO / "tests").rglob("*.py")):
        skips = Skips()
        skips.visit(ast.parse(path.read_text(), str(path)))
        found |= {(str(path.relative_to(REPO)), name) for name in skips.found}
    assert found == NOT_APPLICABLE
