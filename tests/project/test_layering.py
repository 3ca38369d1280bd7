"""The layering, checked on the source. Top first; each package may import itself and the
packages below it, never one above. ``ml`` is below all and knows nothing of Django or HTTP;
tenants, keys and quotas (``accounts``, ``guard``) know neither the edge (``liveness``,
``capture``) nor the console, not even by a dotted name in a string; the HTTP edge imports
nothing from ``ml``, and only ``liveness.checks`` asks the engine for a verdict, writes a check
record or counts a verdict: the one pipeline of /liveness and of a capture session's selfie
(held or not); only ``LivenessEngine.gates`` puts the quality gates together and only
``ml.yunet.largest`` picks the main face; what the endpoints share is liveness.jsonapi's, and
only an app's URLconf imports its views. Imports inside functions count too."""

import ast
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from django.test import Client

from bench import request_trace
from ml.engine import LivenessEngine
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
# What ml may not import: the web framework and its server, the database driver, HTTP itself.
WEB = (
    "django",
    "rest_framework",
    "drf_spectacular",
    "whitenoise",
    "gunicorn",
    "gevent",
    "prometheus_client",
    "psycopg",
    "http",
    "urllib",
    "requests",
)
# Tenants, keys and quotas, and what they may not know (the edge, the console, the site).
CORE = ("accounts", "guard")
ABOVE_CORE = ("facia_site", "console", "capture", "calibration", "liveness")
# The HTTP edge: the modules that take a request and answer it.
EDGE = ("views.py", "urls.py", "middleware.py", "demo.py", "cors.py", "tokens.py", "jsonapi.py")
# The one module that asks the engine for a verdict.
PIPELINE = "liveness/checks.py"
# What writes check records or counts a verdict outside it: the definition's own wrapper (a
# refusal before the engine), and the readiness probe's insert, always rolled back.
NOT_VERDICTS = {
    "telemetry/metrics.py:observe_rejection .observe_verdict()",
    "liveness/runtime.py:_check_row_fits LivenessCheck.create()",
}
# What writes rows through a model's manager or queryset.
WRITES = frozenset(
    {
        "create",
        "insert",
        "update",
        "bulk_create",
        "bulk_update",
        "get_or_create",
        "update_or_create",
    }
)
# ml.quality's gates, put together in one place: LivenessEngine.gates.
GATES = frozenset({"measure", "failures", "capture_of"})


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def package_of(path: Path) -> tuple[str, ...]:
    """The package path of a module of this repository (``("guard", "templatetags")``)."""
    return path.resolve().relative_to(ROOT).parts[:-1] if path.is_relative_to(ROOT) else ()


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def imported(path: Path, package: tuple[str, ...] | None = None) -> set[str]:
    """Top-level package names of everything ``path`` imports; a relative import counts as
    the package it resolves to (from ``package``, by default the module's own)."""
    names: set[str] = set()
    package = package_of(path) if package is None else package
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1]
            names.add(base[0] if base else (node.module or "").split(".")[0])
    return names


def named_in_strings(path: Path, packages: tuple[str, ...]) -> set[str]:
    """Those of ``packages`` a string constant names as a dotted path (``"liveness.models"``,
    ``"capture.CaptureSession"``: import_module, a lazy ForeignKey, apps.get_model's label),
    docstrings aside."""
    tree = parsed(path)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value.split(".")[0] in packages
        and "." in node.value
        and " " not in node.value
    }


def verdict_methods() -> set[str]:
    """The engine's public methods that give a verdict (``Verdict`` or ``Fused``)."""
    return {
        name
        for name, member in vars(LivenessEngine).items()
        if callable(member)
        and not name.startswith("_")
        and any(kind in str(member.__annotations__.get("return")) for kind in ("Verdict", "Fused"))
    }


def verdict_calls(path: Path) -> list[str]:
    """Where ``path`` calls a method of one of those names (``engine.judge(...)``)."""
    methods = verdict_methods()
    return [
        f"{shown(path)}:{node.lineno} .{node.func.attr}()"
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in methods
    ]


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


def test_ml_knows_nothing_of_django_or_http() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources("ml")
        for name in sorted(imported(path) & set(WEB))
    ]
    assert found == []


@pytest.mark.parametrize("package", CORE)
def test_tenants_keys_and_quotas_know_neither_the_edge_nor_the_console(package: str) -> None:
    """Said apart from LAYERS' order, so that reordering it cannot lift the rule."""
    assert set(ABOVE_CORE).isdisjoint(CORE)
    found = [
        f"{path.relative_to(ROOT)} names {name}"
        for path in sources(package)
        for name in sorted((imported(path) | named_in_strings(path, ABOVE_CORE)) & set(ABOVE_CORE))
    ]
    assert found == []


def test_the_edge_imports_nothing_from_the_engine() -> None:
    """A view reads the request, admits it and answers an outcome; what it asks of the engine
    goes through liveness.checks (or capture.service, which calls it)."""
    edge = [p for package in LAYERS for p in sources(package) if p.name in EDGE]
    found = {str(p.relative_to(ROOT)) for p in edge}
    assert {"liveness/views.py", "liveness/jsonapi.py", "capture/views.py"} <= found
    assert [f"{p.relative_to(ROOT)} imports ml" for p in edge if "ml" in imported(p)] == []


def test_no_endpoint_leans_on_the_view_module_of_another() -> None:
    """What every JSON endpoint shares (the view base, the body, admit, the error handlers) is
    liveness.jsonapi's, which no endpoint owns: only liveness's URLconf imports its views."""
    owners = {"liveness.views": {"liveness/urls.py"}, "capture.views": {"capture/urls.py"}}
    for module, allowed in owners.items():
        found = [
            str(path.relative_to(ROOT))
            for package in LAYERS
            for path in sources(package)
            if module in modules_imported(path)
        ]
        assert set(found) == allowed, module


def modules_imported(path: Path) -> set[str]:
    """The dotted modules ``path`` imports, ``from a import b`` counted as ``a`` and ``a.b``
    (absolute imports only: ours are)."""
    names: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_pipeline_asks_the_engine_for_a_verdict() -> None:
    """Every endpoint that judges (/liveness, a capture session's selfie) gets its verdict from
    liveness.checks, so gates, quota, the record and metrics cannot differ between them."""
    assert {"judge", "analyse", "analyse_burst", "check"} <= verdict_methods()
    calls = [
        call
        for package in LAYERS
        if package != "ml"
        for path in sources(package)
        for call in verdict_calls(path)
    ]
    assert calls and {call.split(":")[0] for call in calls} == {PIPELINE}, calls


def calls_by_function(path: Path) -> Iterator[tuple[str, ast.Call]]:
    """Every call in ``path`` with the name of the innermost function it is in ("" if none)."""

    def visit(node: ast.AST, where: str) -> Iterator[tuple[str, ast.Call]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Call):
                yield where, child
            inner = (
                child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            )
            yield from visit(child, inner)

    return visit(parsed(path), "")


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def rooted_at(node: ast.expr, name: str) -> bool:
    """Whether a chain of attributes and calls starts at ``name``
    (``LivenessCheck.objects.filter(pk=1).update``)."""
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return isinstance(node, ast.Name) and node.id == name


def verdict_writes(path: Path) -> list[str]:
    """Where ``path`` inserts or updates check records, or counts a verdict."""
    found = []
    for where, call in calls_by_function(path):
        name = called_name(call)
        func = call.func
        if name in WRITES and isinstance(func, ast.Attribute) and rooted_at(func, "LivenessCheck"):
            found.append(f"{shown(path)}:{where} LivenessCheck.{name}()")
        elif name == "observe_verdict":
            found.append(f"{shown(path)}:{where} .observe_verdict()")
    return found


def gate_sequences(path: Path) -> list[str]:
    """Where ``path`` calls one of ml.quality's gates (``quality.measure``, or ``measure``
    imported from it), or picks a face by its box (``max(faces, key=lambda f: f.box...)``)."""
    imported_gates = {
        alias.asname or alias.name: alias.name
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.ImportFrom) and node.module == "ml.quality"
        for alias in node.names
    }
    found = []
    for where, call in calls_by_function(path):
        func, name = call.func, called_name(call)
        if isinstance(func, ast.Name) and imported_gates.get(name) in GATES:
            found.append(f"{shown(path)}:{where} .{imported_gates[name]}()")
        elif isinstance(func, ast.Attribute) and rooted_at(func, "quality") and name in GATES:
            found.append(f"{shown(path)}:{where} .{name}()")
        elif name in ("max", "min", "sorted") and any(
            k.arg == "key" and "box" in ast.unparse(k.value) for k in call.keywords
        ):
            found.append(f"{shown(path)}:{where} {name}(key=...box...)")
    return found


def every_source() -> list[Path]:
    return [p for package in (*LAYERS, "bench") for p in sources(package)]


def test_only_the_pipeline_records_and_counts_a_verdict() -> None:
    """A check record is inserted, a held one's verdict settled and a verdict counted by
    liveness.checks alone (``record``, ``settle_held``), so its log line, metric and record
    cannot drift apart between /liveness, a session's selfie and a held selfie's challenge."""
    found = [call for path in every_source() for call in verdict_writes(path)]
    assert {call for call in found if not call.startswith(f"{PIPELINE}:")} == NOT_VERDICTS
    assert {call for call in found if call.startswith(f"{PIPELINE}:")} == {
        f"{PIPELINE}:record LivenessCheck.insert()",
        f"{PIPELINE}:_settle_record LivenessCheck.update()",
        f"{PIPELINE}:judge_and_record .observe_verdict()",
        f"{PIPELINE}:settle_held .observe_verdict()",
    }


def test_only_the_engine_puts_the_gates_together() -> None:
    """The main face and the gates' sequence (measures, failures, capture kind) are decided
    in one place, so /sessions/{id}/quality, the verdict and evaluation cannot disagree."""
    found = [
        call
        for path in every_source()
        if shown(path) != "ml/quality.py"
        for call in gate_sequences(path)
    ]
    assert sorted(found) == [
        "ml/engine.py:gates_of .capture_of()",
        "ml/engine.py:gates_of .failures()",
        "ml/engine.py:gates_of .measure()",
        "ml/yunet.py:largest max(key=...box...)",
    ]


def test_the_checks_see_each_kind_of_violation(tmp_path: Path) -> None:
    """Each check above fails on a module that breaks its rule."""
    module = tmp_path / "m.py"
    module.write_text(
        '"""Docstrings may say capture.service."""\n'
        "import http.client\n"
        "import ml.engine\n"
        "def f(engine):\n"
        "    from liveness.runtime import get_engine\n"
        "    model = 'capture.CaptureSession'\n"
        "    return engine.judge([model])\n"
    )
    assert imported(module) == {"http", "ml", "liveness"}
    assert named_in_strings(module, ABOVE_CORE) == {"capture"}
    assert [call.split(":", 1)[1] for call in verdict_calls(module)] == ["7 .judge()"]
    module.write_text(
        "from ml.quality import measure as m\n"
        "def f(faces, image, session, metrics):\n"
        "    face = sorted(faces, key=lambda f: f.box[2] * f.box[3])[0]\n"
        "    LivenessCheck.objects.filter(pk=session.check).update(is_live=True)\n"
        "    metrics.observe_verdict(1, 't', 'live')\n"
        "    return m(image, face, faces), quality.capture_of(face, None)\n"
    )
    assert verdict_writes(module) == [
        "m.py:f LivenessCheck.update()",
        "m.py:f .observe_verdict()",
    ]
    assert gate_sequences(module) == [
        "m.py:f sorted(key=...box...)",
        "m.py:f .measure()",
        "m.py:f .capture_of()",
    ]


def test_a_relative_import_counts_as_the_package_it_reaches(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from . import facia_figures\nfrom ...liveness import views\n")
    assert imported(module, ("guard", "templatetags")) == {"guard", "liveness"}


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
    liveness's part is read in its JSON edge, runtime, views, checks, models and answers, the whole
    request in 20 first-party files (19 for the bench, which logs warnings only: here
    telemetry/logs.py stamps each INFO line with the request id), and it goes back and forth
    between packages no more than the check needs (8 hops), plus the pages'
    Content-Security-Policy middleware that every answer passes (guard/csp.py: 1 file, 1 hop)."""
    body = {"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)}
    assert post_liveness(body).status_code == 201  # imports and URLconf, as the bench does
    replies: list[Any] = []
    files = list(dict.fromkeys(request_trace.trace(lambda: replies.append(post_liveness(body)))))
    assert replies[0].status_code == 201
    assert [name for name in files if name.startswith("liveness/")] == [
        "liveness/jsonapi.py",
        "liveness/runtime.py",
        "liveness/views.py",
        "liveness/checks.py",
        "liveness/models.py",
        "liveness/answers.py",
    ]
    assert len(files) <= 20
    assert len(request_trace.hops(files)) - 1 <= 9


def traced_functions(call: Callable[[], Any]) -> list[str]:
    """``file:function`` of every first-party Python call ``call()`` makes, in order."""
    calls: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and (name := request_trace.first_party(frame.f_code.co_filename)):
            calls.append(f"{name}:{frame.f_code.co_qualname}")

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return calls


def session_selfie(client: Client, hash_id: str) -> Callable[[], Any]:
    """A new capture session's selfie, to be sent by the call returned."""
    opened = client.post("/sessions", {"hash_id": hash_id}, content_type="application/json")
    assert opened.status_code == 201, opened.content
    session, token = opened.json()["session_id"], opened.json()["token"]
    body = json.dumps({"selfie_image": data_uri(LIVE_JPG)})
    return lambda: client.post(
        f"/sessions/{session}/selfie",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.mark.usefixtures("warm_engine")
def test_a_session_selfie_is_judged_by_the_pipeline_of_liveness(
    tenant: tuple[Any, str], client: Client, post_liveness: Post
) -> None:
    """/liveness and a capture session's selfie get their verdict from the same
    liveness.checks.judge_and_record and engine call. The selfie's walk (its table in
    docs/contributor/architecture.md) enters 24 first-party files with 13 hops: capture's views
    use the JSON edge of liveness.jsonapi and add the token, the session and its claim."""
    body = {"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)}
    assert post_liveness(body).status_code == 201  # imports and URLconf
    assert session_selfie(client, tenant[1])().status_code == 202
    replies: list[Any] = []
    liveness = traced_functions(lambda: replies.append(post_liveness(body)))
    send_selfie = session_selfie(client, tenant[1])
    selfie = traced_functions(lambda: replies.append(send_selfie()))
    assert [reply.status_code for reply in replies] == [201, 202]
    for calls in (liveness, selfie):
        assert "liveness/checks.py:judge_and_record" in calls
        assert "ml/engine.py:LivenessEngine.judge" in calls
    files = list(dict.fromkeys(name.split(":")[0] for name in selfie))
    assert len(files) <= 24
    assert len(request_trace.hops(files)) - 1 <= 13
