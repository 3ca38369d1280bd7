"""`make lint`'s mypy runs strict on every source it checks, and each place it is told to look
away says which check and why."""

import re
import tomllib
from typing import Any

from tests.conftest import REPO
from tests.project.test_ci_coverage import lint_sources

# strict's checks that a per-module override may turn back off, for the modules named: classes
# of libraries without stubs (gunicorn, gevent) that mypy sees as Any, subclassed there.
LOOSENED = {
    "disallow_subclassing_any": {"facia_site.worker", "facia_site.taskworker", "telemetry.gunicorn"}
}
STRICT_FLAGS = {
    "warn_unused_configs",
    "disallow_any_generics",
    "disallow_subclassing_any",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "check_untyped_defs",
    "disallow_untyped_decorators",
    "warn_redundant_casts",
    "warn_unused_ignores",
    "warn_return_any",
    "no_implicit_reexport",
    "strict_equality",
    "extra_checks",
}
# An ignore with its codes, then the reason as a comment on the same line.
EXPLAINED = re.compile(r"\[[a-z-]+(,[a-z-]+)*\]  # \S")
IGNORE = re.compile(r"#\s*type:\s*ignore(.*)$")


def mypy_config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def test_mypy_is_strict() -> None:
    config = mypy_config()
    assert config.get("strict") is True
    assert not STRICT_FLAGS & {key for key, value in config.items() if value is False}


def test_no_override_turns_a_strict_check_off_but_for_stubless_bases() -> None:
    loosened = {
        (flag, module)
        for override in mypy_config().get("overrides", [])
        for flag, value in override.items()
        if flag in STRICT_FLAGS and value is False
        for module in override["module"]
    }
    assert loosened == {(flag, m) for flag, modules in LOOSENED.items() for m in modules}


def test_each_type_ignore_names_its_codes_and_its_reason() -> None:
    bare = [
        f"{path.relative_to(REPO)}:{number}"
        for path in lint_sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (found := IGNORE.search(line)) and not EXPLAINED.match(found.group(1))
    ]
    assert bare == []
