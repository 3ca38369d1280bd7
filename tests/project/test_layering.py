"""No import runs back up the layering. Top first; each package may import itself and the
packages below it, never one above. ``ml`` is below all and knows none of them; telemetry takes
ids and names, not model instances. Imports inside functions count too."""

import ast
from pathlib import Path
from typing import Any

import pytest

from bench import request_trace
from tests.conftest import LIVE_JPG, Post, data_uri

ROOT = Path(__file__).resolve().parents[2]
LAYERS = (
    "facia_site",
    "console",
    "capture",
    "calibration",
    "liveness",
    "accounts",
    "guard",
    "telemetry",
    "ml",
)
# Stand-alone: the client talks HTTP only.
INDEPENDENT = ("facia_client",)


def imported(path: Path) -> set[str]:
    """Top-level package names of everything ``path`` imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def upward_imports(package: str, allowed: set[str]) -> list[str]:
    project = set(LAYERS) | set(INDEPENDENT)
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in sorted(imported(path) & project - allowed)
    ]


@pytest.mark.parametrize("package", LAYERS)
def test_no_import_runs_up_the_layering(package: str) -> None:
    below = set(LAYERS[LAYERS.index(package) :])
    assert upward_imports(package, below) == []


@pytest.mark.parametrize("package", INDEPENDENT)
def test_independent_packages_import_no_layer(package: str) -> None:
    assert upward_imports(package, {package}) == []


def test_ml_is_free_of_django() -> None:
    assert [str(p) for p in sources("ml") if {"django", "rest_framework"} & imported(p)] == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from liveness.runtime import get_engine\nimport ml.engine\n")
    assert imported(module) == {"liveness", "ml"}


def test_every_first_party_package_is_placed() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "bench"} == set(LAYERS) | set(INDEPENDENT)


def test_bench_imports_nothing_from_tests() -> None:
    """Benchmarks run without the test suite; tests may use bench (bench.gunicorn)."""
    assert [str(p) for p in sources("bench") if "tests" in imported(p)] == []


def test_no_module_reaches_into_drf_private_request() -> None:
    """DRF's Request is an HttpRequest (its stubs say so, and it forwards what it lacks):
    first-party code passes it on as it is, never through the private ``_request``."""
    packages = [*LAYERS, *INDEPENDENT]
    found = [str(p.relative_to(ROOT)) for pkg in packages for p in sources(pkg)]
    assert [p for p in found if "._request" in (ROOT / p).read_text()] == []


@pytest.mark.usefixtures("warm_engine")
def test_one_verdict_is_read_in_a_few_liveness_modules(
    tenant: tuple[Any, str], post_liveness: Post
) -> None:
    """A /liveness verdict traced in-process as ``python -m bench.request_trace`` traces it:
    liveness's part is read in its views, runtime, checks, answers and models, the whole request in
    18 first-party files (17 for the bench, which logs warnings only: here telemetry/logs.py stamps
    each INFO line with the request id), and it goes back and forth between packages no more than
    the check needs (8 hops)."""
    body = {"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)}
    assert post_liveness(body).status_code == 201  # imports and URLconf, as the bench does
    replies: list[Any] = []
    files = list(dict.fromkeys(request_trace.trace(lambda: replies.append(post_liveness(body)))))
    assert replies[0].status_code == 201
    assert [name for name in files if name.startswith("liveness/")] == [
        "liveness/views.py",
        "liveness/runtime.py",
        "liveness/checks.py",
        "liveness/models.py",
        "liveness/answers.py",
    ]
    assert len(files) <= 18
    assert len(request_trace.hops(files)) - 1 <= 8
