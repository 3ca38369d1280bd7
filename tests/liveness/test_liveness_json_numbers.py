"""NaN, Infinity and -Infinity are not JSON (RFC 8259), nor is a number no double holds
(1e999999, which Python's json reads as inf): json.loads took them, so a check carrying one in
any field was judged (201, a unit spent) while a WAF or proxy in front reads the body
otherwise (an error, a string, a 0). Refused as malformed on every endpoint that parses a body,
as a repeated key is."""

import json
from typing import Any

import pytest

from accounts.models import Tenant
from capture.models import CaptureSession
from liveness.answers import Rejected
from liveness.jsonapi import parse_object
from tests.conftest import LIVE_JPG, data_uri

# The last: valid JSON, refused as its conversion costs time quadratic in its digits (Python's
# int_max_str_digits: 4,300), documented beside them in docs/integrator/api.md.
NOT_JSON = ["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999", "1" * 4301]
MALFORMED = {"error": "Malformed JSON. Request body must be a JSON object."}


def with_literal(body: dict[str, Any], literal: str) -> bytes:
    """``body`` as JSON with one more key whose value is ``literal``, written as is."""
    return (json.dumps(body)[:-1] + f', "x": {literal}}}').encode()


@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize(
    "literal", NOT_JSON, ids=lambda v: v if len(v) < 20 else f"{len(v)} digits"
)
def test_liveness_refuses_them_without_spending_a_unit(
    tenant: tuple[Tenant, str], post_liveness: Any, literal: str
) -> None:
    owner, secret = tenant
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    answer = post_liveness(with_literal(body, literal))
    assert (answer.status_code, answer.json()) == (400, MALFORMED)
    owner.refresh_from_db()
    assert owner.requests_used == 0
    assert post_liveness(with_literal(body, "1.5e300")).status_code == 201  # finite: taken


@pytest.mark.parametrize(
    "literal", NOT_JSON, ids=lambda v: v if len(v) < 20 else f"{len(v)} digits"
)
def test_the_sessions_refuse_them(tenant: tuple[Tenant, str], client: Any, literal: str) -> None:
    _, secret = tenant
    opened = client.post(
        "/sessions", with_literal({"hash_id": secret}, literal), "application/json"
    )
    assert (opened.status_code, opened.json()) == (400, MALFORMED)
    assert not CaptureSession.objects.exists()
    session = client.post("/sessions", {"hash_id": secret}, "application/json").json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    path = f"/sessions/{session['session_id']}"
    for action in ("quality", "selfie", "challenge"):
        body = with_literal({"selfie_image": data_uri(LIVE_JPG)}, literal)
        answer = client.post(f"{path}/{action}", body, "application/json", **bearer)
        assert (answer.status_code, answer.json()) == (400, MALFORMED), action


def test_finite_numbers_are_read_as_before() -> None:
    body = b'{"a": 1.5, "b": -0.0, "c": 1.7976931348623157e308, "d": 1e-400, "e": 10}'
    assert parse_object(body) == {
        "a": 1.5,
        "b": -0.0,
        "c": 1.7976931348623157e308,
        "d": 0.0,
        "e": 10,
    }
    for literal in NOT_JSON:
        with pytest.raises(Rejected, match="malformed_json"):
            parse_object(f'{{"n": [{literal}]}}'.encode())
