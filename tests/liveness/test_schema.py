"""OpenAPI schema and docs pages, served without internet access."""

import re
from typing import Any

import pytest
from django.db import OperationalError
from django.test import RequestFactory
from drf_spectacular.generators import SchemaGenerator
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse

from accounts.models import Tenant
from liveness import checks, runtime
from tests.conftest import LIVE_JPG, data_uri

CDN = re.compile(r"https?://(?!127\.0\.0\.1|localhost)[^\s\"']+\.(js|css)")


def test_schema_documents_the_contract(db: None, client: Any) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/liveness"]["post"]
    assert set(operation["responses"]) >= {"201", "400", "401", "405", "413", "422", "429"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/LivenessRequest")


def counting_generations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one per schema generation, from a cold SchemaView."""
    from liveness.schema import SchemaView

    calls: list[int] = []
    generate = SchemaGenerator.get_schema

    def counted(self: SchemaGenerator, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    monkeypatch.setattr(SchemaView, "_generated", {})
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
