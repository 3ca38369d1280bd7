"""Who may call a session: the bearer token of its token calls (quality, selfie, challenge),
checked here on quality and selfie, and the hash_id of GET /sessions/{id} (Django's test
client, real engine)."""

from datetime import timedelta
from typing import Any

import pytest
from django.test.client import Client
from django.utils import timezone

from capture.models import CaptureSession
from tests.capture.sessions import open_session, post, verdict
from tests.conftest import LIVE_JPG, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_bad_tokens(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant("one")
    _, other_secret = make_tenant("two")
    mine = open_session(client, secret)
    theirs = open_session(client, other_secret)
    url = f"/sessions/{mine['session_id']}/quality"
    body = {"selfie_image": data_uri(LIVE_JPG)}
    cases = {
        "token_missing": post(client, url, body),
        "token_invalid": post(client, url, body, theirs["token"]),  # another tenant's
    }
    cases["malformed"] = post(client, url, body, HTTP_AUTHORIZATION="Basic abc")
    cases["garbage"] = post(client, url, body, "x" * 500)
    cases["non-ascii"] = post(client, url, body, HTTP_AUTHORIZATION="Bearer é")
    for name, response in cases.items():
        assert response.status_code == 401, name
        assert response["WWW-Authenticate"].startswith("Bearer"), name
    assert cases["token_missing"].json()["code"] == "token_missing"
    assert cases["malformed"].json()["code"] == "token_missing"
    # RFC 6750 3.1: no error code when the request has no token at all (docs: `Bearer`)
    assert cases["token_missing"]["WWW-Authenticate"] == "Bearer"
    refused = 'Bearer error="invalid_token", error_description="token_invalid"'
    assert cases["token_invalid"]["WWW-Authenticate"] == refused
    assert cases["token_invalid"].json() == {
        "error": "Invalid session token.",
        "code": "token_invalid",
    }
    assert cases["garbage"].json()["code"] == "token_invalid"
    # The other tenant's hash_id cannot read this session either.
    assert verdict(client, mine["session_id"], other_secret).status_code == 404
    assert verdict(client, mine["session_id"], "nope").json() == {"message": "Invalid credentials"}
    assert client.get(f"/sessions/{mine['session_id']}").status_code == 401
    # The hash_id in the URL is not an accepted way.
    assert client.get(f"/sessions/{mine['session_id']}?hash_id={secret}").status_code == 401


def test_expired_token(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    CaptureSession.objects.filter(pk=sid).update(expires_at=timezone.now() - timedelta(seconds=1))
    for action in ("quality", "selfie"):
        response = post(client, f"/sessions/{sid}/{action}", {"selfie_image": "x"}, token)
        assert response.status_code == 401
        assert response.json() == {
            "error": "The session token has expired; start a new session.",
            "code": "token_expired",
        }
    assert verdict(client, sid, secret).json()["state"] == "expired"
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
