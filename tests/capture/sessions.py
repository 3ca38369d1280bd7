"""What the capture session API's test modules share: its calls through Django's test client, a
dev face crop, the answer about an unknown session."""

import json
from typing import Any

from django.test.client import Client

from tests.conftest import DEV_DATA

CROP = DEV_DATA / "live" / "wolf_1.png"  # a dev face crop


def post(client: Client, url: str, body: Any, token: str | None = None, **extra: Any) -> Any:
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=raw, content_type="application/json", **extra)


def open_session(client: Client, secret: str) -> dict[str, Any]:
    response = post(client, "/sessions", {"hash_id": secret})
    assert response.status_code == 201, response.content
    opened: dict[str, Any] = response.json()
    return opened


def verdict(client: Client, session_id: str, secret: str) -> Any:
    return client.get(f"/sessions/{session_id}", HTTP_X_HASH_ID=secret)


UNKNOWN_SESSION = {"error": "Unknown session."}
