"""The Makefile's dependency graph is right for any `make -j`: a step that uses the virtual
environment has every pip install of its goal among its prerequisites (not merely before it in
a list, which -j runs at once: `make -j setup` ran migrate while pip was installing Django),
and no two pip installs can run at once. Read from make's own database (`make -pqrR`), so what
is checked is what make builds."""

import re
import subprocess
from dataclasses import dataclass, field

import pytest

from tests.conftest import REPO

GOALS = ["setup", "setup-dev", "migrate", "models", "serve", "test", "test-fast", "lint", "docs"]
VARIABLE = re.compile(r"\$\((\w+)\)")


@dataclass
class Rule:
    prerequisites: list[str] = field(default_factory=list)
    recipe: list[str] = field(default_factory=list)


def database() -> tuple[dict[str, Rule], dict[str, str]]:
    """make's rules (prerequisites, order-only ones included) and variables, nothing run."""
    done = subprocess.run(
        ["make", "-pqrR", "-C", str(REPO), "setup"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "# Files" in done.stdout, done.stderr
    variables: dict[str, str] = {}
    rules: dict[str, Rule] = {}
    files = done.stdout.split("\n# Files\n", 1)[1]
    for line in done.stdout.split("\n# Files\n", 1)[0].splitlines():
        if found := re.match(r"^(\w+) :?= (.*)$", line):
            variables[found[1]] = found[2]
    current: Rule | None = None
    for line in files.splitlines():
        if line.startswith("\t") and current is not None:
            current.recipe.append(line.strip())
        elif not line or line.startswith("#"):
            if not line:
                current = None
        elif found := re.match(r"^([^:=\s#]+):(?!=)\s*(.*)$", line):
            current = rules.setdefault(found[1], Rule())
            current.prerequisites = found[2].replace("|", " ").split()
    return rules, variables


def expand(text: str, variables: dict[str, str]) -> str:
    for _ in range(10):
        text = VARIABLE.sub(lambda m: variables.get(m[1], ""), text)
    return text


def closure(rules: dict[str, Rule], target: str) -> set[str]:
    seen: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += rules.get(name, Rule()).prerequisites
    return seen


@pytest.mark.parametrize("goal", GOALS)
def test_every_step_that_uses_the_venv_has_its_installs_as_prerequisites(goal: str) -> None:
    rules, variables = database()
    graph = closure(rules, goal)
    recipes = {name: expand(" ; ".join(rules[name].recipe), variables) for name in graph}
    installs = {name for name, recipe in recipes.items() if "pip install" in recipe}
    uses = {
        name
        for name, recipe in recipes.items()
        if name not in installs
        and (".venv/bin/" in recipe or "bin/entrypoint" in recipe)
        and "-m venv" not in recipe
    }
    assert installs, f"{goal}: no pip install in its graph"
    for name in uses:
        missing = installs - closure(rules, name)
        assert not missing, f"make -j {goal}: {name} may run before {sorted(missing)}"
    for one in installs:
        for other in installs - {one}:
            ordered = other in closure(rules, one) or one in closure(rules, other)
            assert ordered, f"make -j {goal}: {one} and {other} may install at once"


def test_setup_migrates_then_installs_the_models() -> None:
    """What `make serve` and `make test` (the README's two commands) rely on."""
    rules, variables = database()
    for goal in ("setup", "setup-dev"):
        recipe = [expand(line, variables) for line in rules[goal].recipe]
        assert recipe == [
            ".venv/bin/python manage.py migrate --noinput -v 0",
            ".venv/bin/python manage.py install_models",
        ]
    assert ".venv/.stamp-dev" in rules["setup-dev"].prerequisites
    assert ".venv/.stamp-runtime" in closure(rules, "migrate")
