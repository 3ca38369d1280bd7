"""Real answers of the running service (gunicorn, real engine) validated against its own
OpenAPI schema with openapi-core: every status code, body shape, enum and header."""

import base64
import copy
import io
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from PIL import Image

from tests.conftest import LIVE_JPG, data_uri
from tests.liveness.test_schema import closed, template_of, undeclared_headers
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system

Check = Callable[..., requests.Response]


@pytest.fixture(scope="module")
def schema(served: Served) -> dict[str, Any]:
    reply = requests.get(f"{served.base}/api/schema/", params={"format": "json"}, timeout=30)
    reply.raise_for_status()
    return dict(reply.json())


@pytest.fixture(scope="module")
def openapi(schema: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(closed(copy.deepcopy(schema)))


@pytest.fixture(scope="module")
def validate(openapi: OpenAPI, schema: dict[str, Any]) -> Callable[..., None]:
    """Validate an answer against the operation ``as_method`` documents (a 405 is
    documented under the path's real method): its body, its declared headers, and no
    header of the API's own that the schema does not declare."""

    def validate(reply: requests.Response, as_method: str = "") -> None:
        method = as_method or reply.request.method or ""
        documented = requests.Request(method, reply.url, headers=dict(reply.request.headers))
        openapi.validate_response(
            RequestsOpenAPIRequest(documented), RequestsOpenAPIResponse(reply)
        )
        template = template_of(schema, urlsplit(reply.url).path)
        responses = schema["paths"][template][method.lower()]["responses"]
        assert not undeclared_headers(responses, reply.status_code, reply.headers), reply.headers

    return validate


@pytest.fixture(scope="module")
def check(served: Served, validate: Callable[..., None]) -> Check:
    """Send a request, check its status, validate the answer, return it."""

    def send(method: str, path: str, status: int, as_method: str = "", **kw: Any) -> Any:
        reply = requests.request(method, served.base + path, timeout=60, **kw)
        assert reply.status_code == status, reply.text
        validate(reply, as_method)
        return reply

    return send


def blank_jpeg() -> str:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def liveness(hash_id: str, image: str | None = None) -> dict[str, Any]:
    return {"json": {"hash_id": hash_id, "selfie_image": image or data_uri(LIVE_JPG)}}


def test_liveness_answers_match_the_schema(served: Served, check: Check) -> None:
    _, hash_id = served.new_tenant(limit=2)
    ok = check("POST", "/liveness", 201, **liveness(hash_id))
    assert ok.headers["X-Liveness-Profile"] == "fast"
    check("POST", "/liveness", 400, data=b"{not json", headers=JSON)
    check("POST", "/liveness", 400, json={"hash_id": 7})
    check("POST", "/liveness", 400, json={"hash_id": hash_id})
    check("POST", "/liveness", 401, **liveness("not-a-hash-id"))
    check("GET", "/liveness", 405, as_method="POST")
    too_big = b" " * (16 * 1024 * 1024 + 1)
    check("POST", "/liveness", 413, data=too_big, headers=JSON)
    refused = check("POST", "/liveness", 422, **liveness(hash_id, blank_jpeg()))
    assert refused.json()["code"] == "no_face"
    check("POST", "/liveness", 201, **liveness(hash_id))
    quota = check("POST", "/liveness", 429, **liveness(hash_id))
    assert quota.json() == {"message": "Your request limit has been reached."}
    assert "Retry-After" not in quota.headers


def test_throttle_429_matches_the_schema(served: Served, validate: Callable[..., None]) -> None:
    name, hash_id = served.new_tenant()
    served.manage(
        "shell",
        "-c",
        "from accounts.models import Tenant; "
        f"Tenant.objects.filter(name='{name}').update(rate_limit_per_minute=1)",
    )
    for _ in range(3):  # a minute window may end between two calls, never twice
        throttled = requests.post(f"{served.base}/liveness", json={"hash_id": hash_id}, timeout=30)
        if throttled.status_code == 429:
            break
    assert throttled.status_code == 429
    validate(throttled)
    assert set(throttled.json()) == {"error"} and int(throttled.headers["Retry-After"]) >= 0


def test_status_check_matches_the_schema(check: Check) -> None:
    assert check("GET", "/status_check", 200).text == "Service is live"


JSON = {"Content-Type": "application/json"}


def test_session_answers_match_the_schema(served: Served, check: Check) -> None:
    _, hash_id = served.new_tenant(limit=5)
    check("POST", "/sessions", 401, json={"hash_id": "nope"})
    check("POST", "/sessions", 400, data=b"[]", headers=JSON)
    check("GET", "/sessions", 405, as_method="POST")
    opened = check("POST", "/sessions", 201, json={"hash_id": hash_id}).json()
    url, bearer = (
        f"/sessions/{opened['session_id']}",
        {"Authorization": f"Bearer {opened['token']}"},
    )
    own = {"X-Hash-Id": hash_id}
    assert check("GET", url, 200, headers=own).json()["state"] == "open"
    check("GET", url, 401, headers={"X-Hash-Id": "nope"})
    check("GET", f"/sessions/{uuid.uuid4()}", 404, headers=own)
    check("POST", f"{url}/quality", 401, json={"selfie_image": blank_jpeg()})
    check("POST", f"/sessions/{uuid.uuid4()}/quality", 404, json={"selfie_image": "x"})
    failed = check(
        "POST", f"{url}/quality", 200, json={"selfie_image": blank_jpeg()}, headers=bearer
    )
    assert failed.json()["code"] == "no_face"
    check("POST", f"{url}/quality", 200, **liveness(hash_id), headers=bearer)
    check("POST", f"{url}/quality", 413, data=b" " * (1024 * 1024 + 1), headers=bearer | JSON)
    check("POST", f"{url}/selfie", 422, json={"selfie_image": blank_jpeg()}, headers=bearer)
    check("POST", f"{url}/selfie", 400, json={"selfie_image": "%%%"}, headers=bearer)
    check("POST", f"{url}/selfie", 202, json={"selfie_image": data_uri(LIVE_JPG)}, headers=bearer)
    done = check("GET", url, 200, headers=own).json()
    assert done["state"] == "done" and done["message"] == "Success"
    check("POST", f"{url}/selfie", 409, json={"selfie_image": blank_jpeg()}, headers=bearer)
    check("DELETE", url, 405, as_method="GET", headers=own)


USE_UP = (
    "from accounts.models import Tenant; "
    "Tenant.objects.filter(name={name!r}).update(requests_used=1)"
)


def test_session_quota_429_matches_the_schema(served: Served, check: Check) -> None:
    _, hash_id = served.new_tenant(limit=0)
    check("POST", "/sessions", 429, json={"hash_id": hash_id})  # no session at the limit
    name, hash_id = served.new_tenant(limit=1)
    opened = check("POST", "/sessions", 201, json={"hash_id": hash_id}).json()
    served.manage("shell", "-c", USE_UP.format(name=name))  # reached while it is open
    bearer = {"Authorization": f"Bearer {opened['token']}"}
    url = f"/sessions/{opened['session_id']}"
    for action in ("quality", "selfie"):
        body = {"selfie_image": data_uri(LIVE_JPG)}
        check("POST", f"{url}/{action}", 429, json=body, headers=bearer)


def test_unknown_fields_fail_validation(openapi: OpenAPI) -> None:
    """The strict check bites: an extra field is not accepted silently."""
    body = json.dumps({"message": "Invalid credentials", "extra": 1}).encode()
    reply = requests.Response()
    reply.status_code, reply._content = 401, body
    reply.headers["Content-Type"] = "application/json"
    reply.headers["X-Request-ID"] = "x"
    documented = requests.Request("POST", "http://127.0.0.1/liveness")
    with pytest.raises(Exception, match="(?i)valid"):
        openapi.validate_response(
            RequestsOpenAPIRequest(documented), RequestsOpenAPIResponse(reply)
        )
