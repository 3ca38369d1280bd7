"""docs/integrator/api.md says which answers under /liveness and /sessions carry
`Cache-Control: no-store` (every answer of those endpoints, and the 404 of a path no endpoint
has) and names the ones that do not (a Host outside ALLOWED_HOSTS, answered before any
endpoint). Each is provoked through Django's test client. `GET /sessions/not-a-uuid` is an
instance of the schema's `/sessions/{session_id}`, whose every answer declares no-store: its
404 (the URL resolver's) had none."""

import re
import uuid

import pytest
from django.test import Client, RequestFactory
from django.urls import get_resolver

from tests.conftest import REPO

API_MD = REPO / "docs" / "integrator" / "api.md"
UNKNOWN = str(uuid.UUID(int=0))


def statement() -> str:
    """api.md's item on Cache-Control, one space per run of whitespace."""
    text = re.sub(r"\s+", " ", API_MD.read_text(encoding="utf-8"))
    start = text.index("- Every answer of the `/liveness` and `/sessions...` endpoints")
    return text[start : text.index("- Every 201 carries", start)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/liveness", 401),
        ("get", "/liveness", 405),
        ("post", "/sessions", 401),
        ("get", f"/sessions/{UNKNOWN}", 401),
        ("post", f"/sessions/{UNKNOWN}/quality", 404),
        ("post", f"/sessions/{UNKNOWN}/selfie", 404),
        ("post", f"/sessions/{UNKNOWN}/challenge", 404),
    ],
)
def test_every_answer_of_the_endpoints_is_no_store(
    client: Client, method: str, path: str, status: int
) -> None:
    if method == "get":
        response = client.get(path)
    else:
        response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == status, response.content
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/liveness/", "/sessions/not-a-uuid"])
def test_a_path_no_endpoint_has_is_named_as_answered_with_it(client: Client, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.json()) == (404, {"error": "Not found."})
    assert response["Cache-Control"] == "no-store"
    assert f"`{path}`" in statement()


@pytest.mark.django_db
def test_a_refused_host_is_named_as_answered_without_it(client: Client) -> None:
    response = client.post("/liveness", "{}", content_type="application/json", HTTP_HOST="evil")
    assert response.status_code == 400
    assert "Cache-Control" not in response
    assert "a `Host` outside `ALLOWED_HOSTS`" in statement()


def test_an_unexpected_errors_500_is_no_store(rf: RequestFactory) -> None:
    """The 500 Django answers with when a view raises (its handler, as Django resolves it)."""
    handler = get_resolver().resolve_error_handler(500)
    response = handler(rf.get(f"/sessions/{UNKNOWN}"))
    assert response.status_code == 500
    assert response["Cache-Control"] == "no-store"
