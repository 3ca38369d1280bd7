"""OpenAPI schema and docs pages, served without internet access."""

import base64
import copy
import io
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from django.db import OperationalError
from django.db.models import F
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_schema_validator import OAS31Validator
from PIL import Image
from rest_framework.request import Request

from accounts.models import MAX_CHALLENGE_BAND, Tenant
from capture.models import CaptureSession
from facia_site import urls
from guard import throttle
from liveness import checks, runtime
from liveness.answers import LIMIT_REACHED
from liveness.models import IdempotentAnswer
from liveness.schema import Schema
from tests.conftest import LIVE_JPG, data_uri, rate_spent

CDN = re.compile(r"https?://(?!127\.0\.0\.1|localhost)[^\s\"']+\.(js|css)")


def test_schema_documents_the_contract(db: None, client: Any) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/liveness"]["post"]
    assert set(operation["responses"]) >= {"201", "400", "401", "405", "413", "422", "429"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/LivenessRequest")
    description = response.json()["info"]["description"]
    for status in (400, 404, 414, 417, 429, 431, 500, 501, 503):  # any path, before routing
        assert re.search(rf"\b{status}\b", description), status
    components = response.json()["components"]["schemas"]
    success = components["LivenessResponse"]
    assert success["required"] == ["liveness_result", "message"]  # the contract's two keys
    assert success["properties"]["message"]["allOf"] == [
        {"$ref": "#/components/schemas/MessageEnum"}
    ]
    assert components["MessageEnum"]["enum"] == ["Success"]


def counting_generations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one per schema generation, from a cold SchemaView."""
    from liveness.schema import SchemaView

    calls: list[int] = []
    generate: Callable[[SchemaGenerator, Request | None, bool], Schema] = SchemaGenerator.get_schema

    def counted(
        self: SchemaGenerator, request: Request | None = None, public: bool = False
    ) -> Schema:
        calls.append(1)
        return generate(self, request, public)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    monkeypatch.setattr(SchemaView, "_generated", {})
    monkeypatch.setattr(SchemaView, "_rendered", {}, raising=False)
    return calls


def test_schema_is_generated_once_per_process(
    db: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may read /api/schema/: generating it per request let an anonymous client spend
    20-26 ms of a worker's CPU each time. The first request generates it, the rest reuse it."""
    calls = counting_generations(monkeypatch)
    first = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    again = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    yaml = client.get("/api/schema/")
    assert first.status_code == again.status_code == yaml.status_code == 200
    assert len(calls) == 1
    assert first.content == again.content
    assert first.json() == SchemaGenerator().get_schema(request=None, public=True)
    assert b"openapi: 3.1.0" in yaml.content


def test_schema_is_rendered_once_per_format(
    db: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """YAML, the format a client gets without an Accept header, was rendered from the kept
    schema on every request: 20-26 ms of CPU, as much as generating it had cost. Each format
    (and JSON indent) is rendered once; every answer is the same."""
    counting_generations(monkeypatch)
    renders: list[str] = []
    for renderer in (OpenApiYamlRenderer, OpenApiJsonRenderer):
        render = renderer.render

        def counted(self: Any, *args: Any, _render: Any = render, **kwargs: Any) -> Any:
            renders.append(type(self).__name__)
            return _render(self, *args, **kwargs)

        monkeypatch.setattr(renderer, "render", counted)
    accepts = ("", "application/json", "application/json; indent=2")
    headers = {a: {"HTTP_ACCEPT": a} if a else {} for a in accepts}
    answers = {a: [client.get("/api/schema/", **headers[a]) for _ in range(3)] for a in accepts}
    assert sorted(renders) == [
        "OpenApiJsonRenderer2",
        "OpenApiJsonRenderer2",
        "OpenApiYamlRenderer",
    ]
    for accept, (first, *again) in answers.items():
        assert first.status_code == 200 and all(a.content == first.content for a in again)
        assert all(a["Content-Type"] == first["Content-Type"] for a in again), accept
    yaml_answer, json_answer, indented = (answers[a][0] for a in accepts)
    assert yaml_answer["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert yaml.safe_load(yaml_answer.content) == json_answer.json()
    assert json_answer["Content-Type"] == "application/json"
    assert b'\n    "openapi"' in json_answer.content  # drf-spectacular's indent of 4
    assert b'\n  "openapi"' in indented.content and indented.json() == json_answer.json()


def test_the_schema_declares_its_own_content_type_not_the_clients(db: None, client: Any) -> None:
    """The answer's Content-Type is not the client's Accept entry that chose the renderer,
    with its parameters: a UTF-8 body declared charset=utf-16, or carrying "q=0.5"."""
    for accept, expected in (
        ("application/json; charset=utf-16", "application/json"),
        ("application/json; indent=2", "application/json"),
        ("application/vnd.oai.openapi;q=0.5", "application/vnd.oai.openapi; charset=utf-8"),
        ("*/*;q=0.1, application/xml", "application/vnd.oai.openapi; charset=utf-8"),
    ):
        answer = client.get("/api/schema/", HTTP_ACCEPT=accept)
        assert answer.status_code == 200 and answer["Content-Type"] == expected, accept
        assert yaml.safe_load(answer.content.decode("utf-8"))["openapi"] == "3.1.0"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/vnd.oai.openapi+json; q=0", None),
        ("application/json;q=0, application/vnd.oai.openapi;q=0", None),
        ("*/*; q=0", None),
        ("application/vnd.oai.openapi+json;q=0.000, */*", "application/vnd.oai.openapi"),
        ("application/vnd.oai.openapi;q=0, application/json", "application/json"),
        ("application/json; q=0.5", "application/json"),  # a weight above 0 is a yes
    ],
)
def test_the_schema_does_not_serve_a_type_the_client_refused(
    db: None, client: Any, accept: str, expected: str | None
) -> None:
    """RFC 9110 12.4.2: q=0 is "not acceptable". DRF reads no weight: the first two got the
    very type refused (JSON, then YAML), the third any."""
    answer = client.get("/api/schema/", HTTP_ACCEPT=accept)
    if expected is None:
        assert (answer.status_code, answer["Content-Type"]) == (406, "application/json")
        assert answer.json() == {"error": "Could not satisfy the request Accept header."}
    else:
        assert answer.status_code == 200, accept
        assert answer["Content-Type"].split(";")[0] == expected, accept


# A client's ?version=: a quote adds a parameter to Content-Disposition (filename* wins over
# filename), a newline made Django refuse the header (500), and every new value generated and
# kept another schema in the process.
VERSIONS = ("x\"; filename*=UTF-8''evil.html; x=\"", "x%0aX-Evil:%201", "x%0d%0a", "1", "2", "3")


def test_a_client_version_is_neither_echoed_nor_kept(
    db: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_generations(monkeypatch)
    plain = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    for version in VERSIONS:
        answer = client.get(f"/api/schema/?version={version}", HTTP_ACCEPT="application/json")
        assert answer.status_code == 200, version
        assert answer["Content-Disposition"] == plain["Content-Disposition"], version
        assert answer.content == plain.content
    assert plain["Content-Disposition"] == 'inline; filename="Facia on-premises liveness API.json"'
    from liveness.schema import SchemaView

    assert len(calls) == 1 and len(SchemaView._generated) == 1


def test_docs_pages_load_assets_locally(db: None, client: Any) -> None:
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url).content.decode()
        assert not CDN.search(page), url
        for asset in re.findall(r"(/static/[^\"']+\.(?:js|css))", page):
            assert client.get(asset).status_code == 200, asset


def _validate(response: Any, method: str, path: str) -> None:
    """A Django test-client answer against the schema (the 503s a live server rarely gives)."""
    schema = OpenAPI.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    request = RequestFactory().generic(method, path)
    schema.validate_response(DjangoOpenAPIRequest(request), DjangoOpenAPIResponse(response))


def test_status_check_503_matches_the_schema(
    db: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())
    response = client.get("/status_check")
    assert response.status_code == 503
    _validate(response, "GET", "/status_check")


def test_status_check_not_migrated_matches_the_schema(
    one_migration_unapplied: tuple[str, str], warm_engine: None, client: Any
) -> None:
    response = client.get("/status_check")
    assert response.content == b"Database not migrated: 1 migration(s) not applied"
    _validate(response, "GET", "/status_check")


def test_liveness_503s_match_the_schema(
    tenant: tuple[Any, str], post_liveness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> None:
        raise runtime.EngineUnavailable("no models")

    monkeypatch.setattr(checks, "get_engine", unavailable)
    body = {"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)}
    engine_down = post_liveness(body)
    assert engine_down.status_code == 503 and "Retry-After" not in engine_down
    _validate(engine_down, "POST", "/liveness")

    def database_down(tenant: Any) -> bool:
        raise OperationalError("connection refused")

    monkeypatch.setattr(Tenant, "has_room", database_down)
    db_down = post_liveness(body)
    assert db_down.status_code == 503 and db_down["Retry-After"] == "1"
    _validate(db_down, "POST", "/liveness")


# --- every answer against the schema, and every declared status provoked ------------------
#
# Each test below provokes every answer an operation can give through Django's test client
# (real engine, real database) and checks each against the schema: the body and the declared
# required headers (openapi-core, objects closed), and that no header of the API's own is sent
# where the schema does not declare it. Each then asserts that the statuses it provoked are
# exactly the statuses the operation declares: an undeclared answer, or a declared one that
# cannot occur, fails.

API_HEADERS = (
    "X-Request-ID",
    "Retry-After",
    "WWW-Authenticate",
    "X-Liveness-Profile",
    "X-Liveness-Capture",
    "Idempotent-Replayed",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Accept-Encoding",
    "Content-Security-Policy",  # a page's, never declared: the preflight's 204 once had it
)
JSON = "application/json"
SESSION = "/sessions/{session_id}"


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """No undocumented field may appear in a body (drf-spectacular leaves objects open)."""
    for component in schema["components"]["schemas"].values():
        if "properties" in component:
            component["additionalProperties"] = False
    return schema


def undeclared_headers(responses: dict[str, Any], status: int, sent: Any) -> set[str]:
    """The API's own headers in ``sent`` (a mapping) that the operation's ``responses`` do not
    declare for ``status`` (openapi-core checks only the declared ones)."""
    declared = set(responses[str(status)].get("headers", {}))
    names = {name for name in API_HEADERS if name in sent}
    if status == 405:
        names.add("Allow")
    return names - declared


def template_of(schema: dict[str, Any], path: str) -> str:
    """The schema's path template that ``path`` is an instance of."""
    for template in schema["paths"]:
        if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path):
            return str(template)
    raise AssertionError(f"{path} is in no path of the schema")


class Contract:
    """Answers checked against the schema, and the statuses each operation gave."""

    def __init__(self) -> None:
        self.schema = SchemaGenerator().get_schema(request=None, public=True)
        self.api = OpenAPI.from_dict(closed(copy.deepcopy(self.schema)))
        self.seen: dict[tuple[str, str], set[int]] = {}

    def responses(self, template: str, method: str) -> dict[str, Any]:
        return dict(self.schema["paths"][template][method.lower()]["responses"])

    def check(self, response: Any, method: str, template: str, path: str) -> Any:
        """``response`` to ``method path`` (documented under ``template``; a 405 under the
        operation's own method) against the schema."""
        status = response.status_code
        declared = self.responses(template, method)
        assert str(status) in declared, f"{method} {template}: {status} not declared"
        request = RequestFactory().generic(method, path)
        self.api.validate_response(DjangoOpenAPIRequest(request), DjangoOpenAPIResponse(response))
        extra = undeclared_headers(declared, status, response)
        assert not extra, f"{method} {template} {status}: {extra} not declared"
        self.seen.setdefault((template, method), set()).add(status)
        return response

    def statuses(self, template: str, method: str) -> tuple[set[int], set[int]]:
        """(provoked, declared) for one operation."""
        declared = {int(status) for status in self.responses(template, method)}
        return self.seen.get((template, method), set()), declared


@pytest.fixture
def contract() -> Contract:
    return Contract()


GZIP = {"HTTP_CONTENT_ENCODING": "gzip"}


def send(client: Any, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    """A request through the test client; ``body`` a dict (as JSON) or raw text/bytes."""
    raw = json.dumps(body) if isinstance(body, dict) else body
    if raw is None:
        return client.generic(method, path, **extra)
    return client.generic(method, path, raw, content_type=JSON, **extra)


def blank_image() -> str:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def unready(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's database held down (liveness.runtime.DOWN_HOLD_S): 503 at once."""
    monkeypatch.setattr(runtime, "database_held_down", lambda: True)


def throttled_client(settings: Any) -> dict[str, str]:
    """A client address already blocked by the failed-authentication throttle."""
    settings.AUTH_FAILURE_LIMIT = 1
    settings.AUTH_FAILURE_WINDOW_S = 10**6  # no window ends during the test
    throttle.auth_failed("10.9.0.1")
    return {"REMOTE_ADDR": "10.9.0.1"}


@pytest.mark.usefixtures("warm_engine")
def test_every_liveness_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    tenant, secret = make_tenant(request_limit=2)
    live = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}

    def post(body: Any, method: str = "POST", **extra: Any) -> Any:
        return contract.check(
            send(client, method, "/liveness", body, **extra), "POST", "/liveness", "/liveness"
        )

    keyed = {"HTTP_IDEMPOTENCY_KEY": "first"}
    ok = post(live, **keyed)
    assert ok.status_code == 201 and set(ok.json()) == {"liveness_result", "message"}
    assert post(b"{not json").status_code == 400
    assert post({"hash_id": secret}).status_code == 400
    assert post({"hash_id": "nope", "selfie_image": "x"}).status_code == 401
    assert post(None, method="GET").status_code == 405
    assert post(None, method="OPTIONS").status_code == 405
    assert post(b" " * (settings.LIVENESS_MAX_BODY_BYTES + 1)).status_code == 413
    assert post(live, **GZIP).status_code == 415
    assert post({"hash_id": secret, "selfie_image": blank_image()}).json()["code"] == "no_face"
    assert post(live).status_code == 201
    quota = post(live)
    assert quota.json() == {"message": "Your request limit has been reached."}
    assert "Retry-After" not in quota
    assert post(live, **keyed)["Idempotent-Replayed"] == "true"  # the key's answer, no unit
    reused = post({**live, "selfie_image": blank_image()}, **keyed)
    assert reused.json()["code"] == "idempotency_key_reused"
    assert post(live, HTTP_IDEMPOTENCY_KEY="\x7f").status_code == 400
    IdempotentAnswer.objects.update(status=None)  # as while the first request is judged
    assert post(live, **keyed)["Retry-After"] == "1"
    assert post(live, **throttled_client(settings)).status_code == 429
    rate_spent(tenant)
    assert post(live)["Retry-After"]
    unready(monkeypatch)
    assert post(live)["Retry-After"] == "1"
    provoked, declared = contract.statuses("/liveness", "POST")
    assert provoked == declared


def open_session(client: Any, secret: str) -> tuple[str, dict[str, str]]:
    """A new session's path and its bearer header."""
    opened = send(client, "POST", "/sessions", {"hash_id": secret}).json()
    return f"/sessions/{opened['session_id']}", {"HTTP_AUTHORIZATION": f"Bearer {opened['token']}"}


@pytest.mark.usefixtures("warm_engine")
def test_every_session_create_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    tenant, secret = make_tenant(request_limit=1)

    def post(body: Any, method: str = "POST", **extra: Any) -> Any:
        answer = send(client, method, "/sessions", body, **extra)
        return contract.check(answer, "POST", "/sessions", "/sessions")

    assert post({"hash_id": secret}).status_code == 201
    assert post(b"[]").status_code == 400
    assert post({"hash_id": "nope"}).status_code == 401
    assert post(None, method="GET").status_code == 405
    assert post(b" " * (settings.LIVENESS_MAX_BODY_BYTES + 1)).status_code == 413
    assert post({"hash_id": secret}, **GZIP).status_code == 415
    Tenant.objects.filter(pk=tenant.pk).update(requests_used=1)
    assert "Retry-After" not in post({"hash_id": secret})  # the quota's 429
    assert post({"hash_id": secret}, **throttled_client(settings)).status_code == 429
    unready(monkeypatch)
    assert post({"hash_id": secret}).status_code == 503
    provoked, declared = contract.statuses("/sessions", "POST")
    assert provoked == declared


@pytest.mark.usefixtures("warm_engine")
def test_every_session_read_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    tenant, secret = make_tenant(request_limit=1)
    path, _ = open_session(client, secret)

    def get(path: str, hash_id: str | None = secret, method: str = "GET", **extra: Any) -> Any:
        if hash_id is not None:
            extra["HTTP_X_HASH_ID"] = hash_id
        return contract.check(send(client, method, path, **extra), "GET", SESSION, path)

    assert get(path).json()["state"] == "open"
    assert get(path, hash_id=None).status_code == 401
    assert get(path, hash_id="nope").status_code == 401
    assert get(f"/sessions/{uuid.uuid4()}").status_code == 404
    assert get("/sessions/AAA").status_code == 404  # the URL resolver's, not the view's
    assert get(path, method="DELETE").status_code == 405
    assert get(path, **throttled_client(settings)).status_code == 429
    rate_spent(tenant)
    assert get(path).json()["error"].startswith("Request rate limit exceeded")
    unready(monkeypatch)
    assert get(path).status_code == 503
    provoked, declared = contract.statuses(SESSION, "GET")
    assert provoked == declared


def token_errors(call: Any, path: str, bearer: dict[str, str]) -> None:
    """The three token 401s, an unknown session's 404, a wrong method's 405 and a gzip body's
    415."""
    assert call(path, {}, headers={}).json()["code"] == "token_missing"
    wrong = {"HTTP_AUTHORIZATION": "Bearer not-this-sessions-token"}
    assert call(path, {}, headers=wrong).json()["code"] == "token_invalid"
    CaptureSession.objects.filter(pk=path.split("/")[2]).update(expires_at=timezone.now())
    assert call(path, {}, headers=bearer).json()["code"] == "token_expired"
    assert call(f"/sessions/{uuid.uuid4()}", {}, headers=bearer).status_code == 404
    assert call(path, None, headers=bearer, method="GET").status_code == 405
    assert call(path, {}, headers=bearer | GZIP).status_code == 415


def session_call(client: Any, contract: Contract, action: str) -> Any:
    """POST (or ``method``) /sessions/{id}/``action``, checked against the schema."""

    def call(path: str, body: Any, headers: dict[str, str], method: str = "POST") -> Any:
        answer = send(client, method, f"{path}/{action}", body, **headers)
        return contract.check(answer, "POST", f"{SESSION}/{action}", f"{path}/{action}")

    return call


def limits_and_faults(
    call: Any, fresh: Any, tenant: Tenant, settings: Any, monkeypatch: Any, body: Any
) -> None:
    """429 for the session's own rate and call budget, the tenant's quota and a throttled
    client, never the tenant's rate; then 503. ``fresh()`` opens a new session (path,
    bearer)."""
    path, bearer = fresh()
    own_rates = settings.SESSION_QUALITY_PER_S, settings.SESSION_SELFIE_PER_MIN
    settings.SESSION_QUALITY_PER_S = settings.SESSION_SELFIE_PER_MIN = 0
    assert call(path, body, headers=bearer)["Retry-After"]
    settings.SESSION_QUALITY_PER_S, settings.SESSION_SELFIE_PER_MIN = own_rates
    path, bearer = fresh()
    spent = CaptureSession.objects.filter(pk=path.split("/")[2])
    spent.update(token_calls=settings.SESSION_CALL_BUDGET)
    assert call(path, body, headers=bearer).json()["code"] == "session_calls_spent"
    path, bearer = fresh()
    assert call(path, body, headers=bearer | throttled_client(settings)).status_code == 429
    Tenant.objects.filter(pk=tenant.pk).update(requests_used=F("request_limit"))
    rate_spent(tenant)
    assert call(path, body, headers=bearer).json() == {"message": LIMIT_REACHED}
    unready(monkeypatch)
    assert call(path, body, headers=bearer).status_code == 503


@pytest.mark.usefixtures("warm_engine")
def test_every_quality_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    tenant, secret = make_tenant(request_limit=5)
    call = session_call(client, contract, "quality")
    path, bearer = open_session(client, secret)
    frame = {"selfie_image": data_uri(LIVE_JPG)}
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://shop.example"]
    cross = call(path, frame, headers=bearer | {"HTTP_ORIGIN": "https://shop.example"})
    assert cross.json()["passed"] is True and cross["Access-Control-Allow-Origin"]
    assert call(path, {"selfie_image": blank_image()}, headers=bearer).json()["code"] == "no_face"
    assert call(path, {"selfie_image": "%%%"}, headers=bearer).status_code == 400
    too_big = b" " * (settings.SESSION_QUALITY_MAX_BYTES + 1)
    assert call(path, too_big, headers=bearer).status_code == 413
    CaptureSession.objects.filter(pk=path.split("/")[2]).update(state=CaptureSession.DONE)
    assert call(path, frame, headers=bearer).json()["state"] == "done"
    token_errors(call, *open_session(client, secret))
    limits_and_faults(
        call, lambda: open_session(client, secret), tenant, settings, monkeypatch, frame
    )
    provoked, declared = contract.statuses(f"{SESSION}/quality", "POST")
    assert provoked == declared


@pytest.mark.usefixtures("warm_engine")
def test_every_challenge_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    tenant, secret = make_tenant(request_limit=5, challenge="head_turn")
    call = session_call(client, contract, "challenge")
    path, bearer = open_session(client, secret)
    assert call(path, None, headers=bearer).json()["challenge"]["state"] == "running"
    assert call(path, b"{", headers=bearer).status_code == 400
    too_big = b" " * (settings.SESSION_QUALITY_MAX_BYTES + 1)
    assert call(path, too_big, headers=bearer).status_code == 413
    for _ in range(settings.CAPTURE_CHALLENGE_TRIES):
        refused = call(path, {}, headers=bearer)
    assert refused.json()["code"] == "challenge_tries_exhausted"
    _, plain = make_tenant(name="plain", request_limit=5)
    other, other_bearer = open_session(client, plain)
    assert call(other, {}, headers=other_bearer).json()["code"] == "challenge_not_required"
    token_errors(call, *open_session(client, secret))
    limits_and_faults(call, lambda: open_session(client, secret), tenant, settings, monkeypatch, {})
    provoked, declared = contract.statuses(f"{SESSION}/challenge", "POST")
    assert provoked == declared


@pytest.mark.usefixtures("warm_engine")
def test_every_selfie_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    tenant, secret = make_tenant(request_limit=5)
    call = session_call(client, contract, "selfie")
    path, bearer = open_session(client, secret)
    live = {"selfie_image": data_uri(LIVE_JPG)}
    assert call(path, {"selfie_image": blank_image()}, headers=bearer).status_code == 422
    assert call(path, {"frames": []}, headers=bearer).status_code == 400
    too_big = b" " * (settings.LIVENESS_MAX_BODY_BYTES + 1)
    assert call(path, too_big, headers=bearer).status_code == 413
    assert call(path, live, headers=bearer).json()["state"] == "received"
    assert call(path, live, headers=bearer).json()["state"] == "done"
    _, turning = make_tenant(name="turning", request_limit=5, challenge="head_turn")
    other, other_bearer = open_session(client, turning)
    assert call(other, live, headers=other_bearer).json()["code"] == "challenge_not_passed"
    # A when_unsure tenant whose band holds every score: the 202 asks for the challenge, and
    # the session refuses a second selfie.
    _, unsure = make_tenant(name="unsure", request_limit=5, challenge="when_unsure")
    Tenant.objects.filter(name="unsure").update(challenge_band=MAX_CHALLENGE_BAND)
    held, held_bearer = open_session(client, unsure)
    assert call(held, live, headers=held_bearer).json()["challenge"]["state"] == "pending"
    assert call(held, live, headers=held_bearer).json()["code"] == "selfie_held"
    token_errors(call, *open_session(client, secret))
    limits_and_faults(
        call, lambda: open_session(client, secret), tenant, settings, monkeypatch, live
    )
    provoked, declared = contract.statuses(f"{SESSION}/selfie", "POST")
    assert provoked == declared


def test_every_status_check_answer_is_declared_and_occurs(
    db: None, client: Any, contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    def get(method: str = "GET") -> Any:
        answer = send(client, method, "/status_check")
        operation = "HEAD" if method == "HEAD" else "GET"  # a 405 is GET's
        return contract.check(answer, operation, "/status_check", "/status_check")

    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())  # not warmed yet
    assert get()["Retry-After"] == "1"
    assert get("HEAD")["Retry-After"] == "1"
    assert get("POST")["Allow"] == "GET, HEAD"
    monkeypatch.undo()
    runtime.get_engine()
    assert get().content == b"Service is live"
    assert get("HEAD").content == b""
    for method in ("GET", "HEAD"):
        provoked, declared = contract.statuses("/status_check", method)
        assert provoked == declared, method


def test_every_healthz_answer_is_declared_and_occurs(
    db: None, client: Any, contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    def get(method: str = "GET") -> Any:
        answer = send(client, method, "/healthz")
        operation = "HEAD" if method == "HEAD" else "GET"  # a 405 is GET's
        return contract.check(answer, operation, "/healthz", "/healthz")

    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())  # not warmed yet
    assert get().content == runtime.STARTING.encode()
    assert get("HEAD")["Retry-After"] == "1"
    assert get("POST")["Allow"] == "GET, HEAD"
    monkeypatch.undo()
    runtime.get_engine()
    assert get().content == b"Process is live"
    assert get("HEAD").content == b""
    for method in ("GET", "HEAD"):
        provoked, declared = contract.statuses("/healthz", method)
        assert provoked == declared, method


# Served paths that are not the API: the operator's scrape (docs: Observability), the schema
# and its two pages, the capture demo's HTML pages (off by default).
NOT_API = {
    "/metrics",
    "/api/schema/",
    "/api/docs/",
    "/api/redoc/",
    "/capture/demo",
    "/capture/demo/{session_id}",
}


def routes(patterns: list[URLPattern | URLResolver], prefix: str = "/") -> set[str]:
    """The paths ``patterns`` serve, as the schema writes them (``{session_id}``)."""
    found: set[str] = set()
    for entry in patterns:
        route = prefix + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(entry.pattern))
        if isinstance(entry, URLResolver):
            found |= routes(entry.url_patterns, route)
        else:
            found.add(route)
    return found


def test_the_schema_has_every_api_route_and_no_other() -> None:
    """Every path the site serves outside the admin is in the schema, or named in NOT_API:
    /healthz, the kubelet's livenessProbe, was served but in no schema (the schema's probes
    are plain Django views, added by hand)."""
    served = routes(urls.served)
    assert served >= NOT_API
    assert set(SchemaGenerator().get_schema(request=None, public=True)["paths"]) == (
        served - NOT_API
    )


PREFLIGHT = {"HTTP_ORIGIN": "https://shop.example", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST"}
TOKEN_CALLS = ("quality", "challenge", "selfie")


@pytest.mark.parametrize("action", TOKEN_CALLS)
def test_every_preflight_answer_is_declared_and_occurs(
    make_tenant: Any,
    client: Any,
    contract: Contract,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
) -> None:
    """A token call's CORS preflight: 204 with the CORS headers to an allowed origin, without
    them to another; 405 to an OPTIONS that is no preflight; 503 while the database is held
    down; 404 to an id that is not a UUID (the URL resolver's). drf-spectacular leaves OPTIONS
    out; capture.cors declares it."""
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://shop.example"]
    _, secret = make_tenant(request_limit=5)
    path = f"{open_session(client, secret)[0]}/{action}"

    def preflight(**headers: str) -> Any:
        answer = send(client, "OPTIONS", path, **headers)
        return contract.check(answer, "OPTIONS", f"{SESSION}/{action}", path)

    allowed = preflight(**PREFLIGHT)
    assert allowed.status_code == 204 and allowed["Access-Control-Max-Age"] == "600"
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example"
    other = preflight(**{**PREFLIGHT, "HTTP_ORIGIN": "https://elsewhere.example"})
    assert other.status_code == 204 and "Access-Control-Allow-Methods" not in other
    assert preflight(HTTP_ORIGIN="https://shop.example").status_code == 405
    malformed = send(client, "OPTIONS", f"/sessions/AAA/{action}", **PREFLIGHT)
    contract.check(malformed, "OPTIONS", f"{SESSION}/{action}", f"/sessions/AAA/{action}")
    assert malformed.status_code == 404
    unready(monkeypatch)
    assert preflight(**PREFLIGHT).status_code == 503
    provoked, declared = contract.statuses(f"{SESSION}/{action}", "OPTIONS")
    assert provoked == declared


def test_every_session_head_answer_is_declared_and_occurs(
    make_tenant: Any, client: Any, contract: Contract, settings: Any, monkeypatch: Any
) -> None:
    """HEAD /sessions/{id} answers as GET, without the body (Django serves it with the GET
    view); drf-spectacular leaves HEAD out, so the schema had no HEAD there (capture.schema
    declares it, as liveness.schema declares /status_check's). Never 405: HEAD is allowed."""
    _, secret = make_tenant(request_limit=1)
    path, _ = open_session(client, secret)

    def head(path: str, hash_id: str = secret, **extra: Any) -> Any:
        answer = send(client, "HEAD", path, HTTP_X_HASH_ID=hash_id, **extra)
        assert answer.content == b""
        return contract.check(answer, "HEAD", SESSION, path)

    assert head(path).status_code == 200
    assert head(path, hash_id="nope").status_code == 401
    assert head(f"/sessions/{uuid.uuid4()}").status_code == 404
    assert head("/sessions/AAA").status_code == 404
    assert head(path, **throttled_client(settings)).status_code == 429
    unready(monkeypatch)
    assert head(path).status_code == 503
    provoked, declared = contract.statuses(SESSION, "HEAD")
    assert provoked == declared


RESOLVER_404S = [
    ("GET", "/sessions/AAA", SESSION),
    *(("POST", f"/sessions/AAA/{action}", f"{SESSION}/{action}") for action in TOKEN_CALLS),
]


@pytest.mark.parametrize(("method", "path", "template"), RESOLVER_404S)
def test_the_url_resolvers_404_under_sessions_matches_the_schema(
    db: None, client: Any, contract: Contract, method: str, path: str, template: str
) -> None:
    """A session id that is not a UUID is the URL resolver's 404, which lacked the
    `Cache-Control: no-store` the schema declares on every answer of these paths (an unknown
    well-formed id's 404, the view's, has it)."""
    answer = contract.check(send(client, method, path, {}), method, template, path)
    assert (answer.status_code, answer["Cache-Control"]) == (404, "no-store")


def test_a_trailing_slash_is_a_no_store_404(db: None, client: Any) -> None:
    answer = send(client, "GET", f"/sessions/{uuid.uuid4()}/")
    assert answer.status_code == 404 and answer["Cache-Control"] == "no-store"


# --- what the schema calls a valid request is what the service takes (schemathesis, ST202) ---

IDEMPOTENCY_KEYS = ("k", "a" * 255, "5b0e8c1e-3d8f", "a b", "!~", "a" * 256, "\x7f", "é", "a\tb")


def valid(schema: dict[str, Any], value: object) -> bool:
    return bool(OAS31Validator(schema).is_valid(value))


@pytest.mark.usefixtures("warm_engine")
def test_the_schema_takes_the_idempotency_keys_the_service_takes(
    make_tenant: Any, client: Any, contract: Contract
) -> None:
    """The key's schema said only "string": schemathesis sent keys it called valid (empty, over
    255, not printable ASCII) and the service answered 400."""
    _, secret = make_tenant(request_limit=100)
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    parameters = contract.schema["paths"]["/liveness"]["post"]["parameters"]
    schema = next(p["schema"] for p in parameters if p["name"] == "Idempotency-Key")
    for key in IDEMPOTENCY_KEYS:
        answer = send(client, "POST", "/liveness", body, HTTP_IDEMPOTENCY_KEY=key)
        assert (answer.status_code != 400) == valid(schema, key), (key, answer.content)


def test_the_schema_takes_only_what_is_answered_as_a_preflight(
    make_tenant: Any, client: Any, contract: Contract, settings: Any
) -> None:
    """The schema calls an OPTIONS valid exactly when it is answered as a preflight (204): with
    Origin and Access-Control-Request-Method optional, one with only one of them would be
    valid by the schema yet answered 405 (no preflight)."""
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://shop.example"]
    _, secret = make_tenant()
    path = f"{open_session(client, secret)[0]}/quality"
    parameters = contract.schema["paths"][f"{SESSION}/quality"]["options"]["parameters"]
    declared = {p["name"]: p for p in parameters if p["in"] == "header"}
    origin, method = "Origin", "Access-Control-Request-Method"
    cases: list[dict[str, str]] = [{origin: "https://shop.example", method: "POST"}]
    cases += [{origin: "https://shop.example"}, {method: "POST"}, {origin: "", method: "POST"}]
    for case in cases:
        meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in case.items()}
        answer = send(client, "OPTIONS", path, **meta)
        schema_valid = all(
            name in case and valid(parameter["schema"], case[name])
            for name, parameter in declared.items()
            if parameter.get("required")
        )
        assert (answer.status_code == 204) == schema_valid, (case, answer.status_code)


def test_the_challenge_takes_no_body_as_the_schema_says(
    make_tenant: Any, client: Any, contract: Contract, settings: Any
) -> None:
    """The schema declared no body for the challenge (drf-spectacular drops an empty
    serializer's, and it said "the body is ignored"), yet without one the answer was 400
    "Malformed JSON": a generated client could never start or retry it. No body (no
    Content-Length, or 0) is {}; one present must be a JSON object."""
    settings.CAPTURE_CHALLENGE_TRIES = 5
    operation = contract.schema["paths"][f"{SESSION}/challenge"]["post"]
    body = operation["requestBody"]
    assert not body.get("required", False)
    schema = body["content"][JSON]["schema"]
    _, secret = make_tenant(challenge="head_turn")
    call = session_call(client, contract, "challenge")
    path, bearer = open_session(client, secret)
    for raw in (None, b"", b'{"steps": 1}'):  # no Content-Length, 0, an object (ignored)
        assert call(path, raw, headers=bearer).json()["challenge"]["state"] == "running", raw
    assert valid(schema, {"steps": 1}) and not valid(schema, []) and not valid(schema, None)
    for raw in (b"{", b" ", b"[]", b"null"):
        assert call(path, raw, headers=bearer).status_code == 400, raw


@pytest.mark.usefixtures("warm_engine")
def test_the_schema_requires_what_the_selfie_requires(
    make_tenant: Any, client: Any, contract: Contract, settings: Any
) -> None:
    """SelfieRequest required no field, yet `{}` is 400 "Selfie_image is required": a selfie
    needs `selfie_image` or `frames` (capture.service.frame_values). A blank frame is valid and
    refused by a gate (422, the session stays open)."""
    settings.SESSION_SELFIE_PER_MIN = 100
    _, secret = make_tenant()
    call = session_call(client, contract, "selfie")
    path, bearer = open_session(client, secret)
    schema = contract.schema["components"]["schemas"]["SelfieRequest"]
    blank = blank_image()
    bodies: list[dict[str, Any]] = [
        {},
        {"other": blank},
        {"selfie_image": blank},
        {"frames": [blank]},
        {"frames": [blank], "selfie_image": blank},
        {"frames": []},
        {"selfie_image": 1},
    ]
    for body in bodies:
        answer = call(path, body, headers=bearer)
        assert (answer.status_code != 400) == valid(schema, body), (list(body), answer.content)


@pytest.mark.usefixtures("warm_engine")
def test_the_schema_takes_the_more_time_the_service_takes(
    make_tenant: Any, client: Any, contract: Contract, settings: Any
) -> None:
    """A `more_time` that is not a boolean ("yes", "true", 1) was read as false: the person's
    ask for more time silently not given. The schema's boolean is what the service takes;
    anything else is 400."""
    settings.SESSION_QUALITY_PER_S = 100
    _, secret = make_tenant(challenge="head_turn")
    call = session_call(client, contract, "quality")
    path, bearer = open_session(client, secret)
    schema = contract.schema["components"]["schemas"]["FrameRequest"]
    frame = data_uri(LIVE_JPG)
    values: list[object] = [True, False, "yes", "true", 1, 0, None, []]
    for more_time in values:
        body = {"selfie_image": frame, "more_time": more_time}
        answer = call(path, body, headers=bearer)
        assert (answer.status_code == 200) == valid(schema, body), (more_time, answer.content)
        if answer.status_code == 400:
            assert answer.json() == {"error": "more_time must be true or false."}
    assert call(path, {"selfie_image": frame}, headers=bearer).status_code == 200


# --- the schema and its pages answer anything but a GET or HEAD as the API does -------------

DOC_PAGES = ("/api/schema/", "/api/docs/", "/api/redoc/")


@pytest.mark.parametrize("url", DOC_PAGES)
def test_doc_pages_refuse_other_methods_with_our_json(db: None, client: Any, url: str) -> None:
    """Any method but GET and HEAD gets our JSON 405: left to DRF, OPTIONS /api/docs/ would be
    a 500 (its metadata through a template-less HTML renderer), OPTIONS /api/schema/ a 200 of
    the view's docstring as YAML, and any other method a 405 in the page's own format (YAML,
    or a bare text/html line)."""
    for method in ("OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"):
        answer = client.generic(method, url)
        assert answer.status_code == 405, (method, answer.content[:80])
        assert answer["Content-Type"] == "application/json", method
        assert answer.json() == {"error": f'Method "{method}" not allowed.'}
        assert answer["Allow"] == "GET, HEAD"
    assert client.get(url).status_code == 200
    assert client.head(url).status_code == 200


@pytest.mark.parametrize("url", DOC_PAGES)
def test_doc_pages_refuse_a_format_or_accept_with_our_json(db: None, client: Any, url: str) -> None:
    """An unknown ?format= (404) and an Accept the page cannot serve (406) are answered in our
    JSON, not in the page's own format: YAML on the schema, a bare text/html line on the
    pages."""
    unknown = client.get(f"{url}?format=xml")
    assert unknown.status_code == 404 and unknown["Content-Type"] == "application/json"
    assert unknown.json() == {"error": "Not found."}
    refused = client.get(url, HTTP_ACCEPT="application/xml")
    assert refused.status_code == 406 and refused["Content-Type"] == "application/json"
    assert refused.json() == {"error": "Could not satisfy the request Accept header."}
