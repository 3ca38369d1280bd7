"""docs/integrator/sessions.md's table of calls names the keys of each success answer; they are
the keys the service answers (Django's test client, the real engine): a session opened, read
while open and once done, a quality frame, a burst selfie, a head-turn challenge restarted."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test.client import Client

from tests.conftest import LIVE_JPG, REPO, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")
PAGE = REPO / "docs" / "integrator" / "sessions.md"


def answer_keys(row: str, status: int) -> set[str]:
    """The top-level keys of the object the table's row gives after ``status``: the quoted
    names that follow `{` or `,` at the outer depth (a value follows `:`)."""
    line = next(
        line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith(row)
    )
    shown = re.search(rf"{status} `(\{{[^`]*\}})`", line)
    assert shown is not None, (row, status)
    keys, depth, previous = set(), 0, ""
    for token in re.findall(r'"\w+"|[{}\[\],:]', shown[1]):
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
        elif token.startswith('"') and depth == 1 and previous in "{,":
            keys.add(token.strip('"'))
        previous = token
    return keys


def post(client: Client, url: str, body: Any, token: str) -> Any:
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_calls_answer_the_keys_the_table_gives(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant(request_limit=5)
    opened = client.post("/sessions", {"hash_id": secret}, content_type="application/json")
    assert opened.status_code == 201
    assert set(opened.json()) == answer_keys("| `POST /sessions` ", 201)
    sid, token = opened.json()["session_id"], opened.json()["token"]
    get_row, image = "| `GET /sessions/{id}` ", data_uri(LIVE_JPG)
    state = client.get(f"/sessions/{sid}", HTTP_X_HASH_ID=secret)
    assert set(state.json()) == answer_keys(get_row, 200)  # open: no message yet
    quality = post(client, f"/sessions/{sid}/quality", {"selfie_image": image}, token)
    assert set(quality.json()) == answer_keys("| `POST /sessions/{id}/quality` ", 200)
    selfie = post(client, f"/sessions/{sid}/selfie", {"frames": [image, image]}, token)
    assert selfie.status_code == 202
    assert set(selfie.json()) == answer_keys("| `POST /sessions/{id}/selfie` ", 202)
    done = client.get(f"/sessions/{sid}", HTTP_X_HASH_ID=secret).json()
    assert done["state"] == "done"
    assert set(done) == answer_keys(get_row, 200) | {"message"}


def test_the_challenge_call_answers_the_key_the_table_gives(
    make_tenant: Any, client: Client
) -> None:
    _, secret = make_tenant(challenge="head_turn")
    opened = client.post("/sessions", {"hash_id": secret}, content_type="application/json")
    sid, token = opened.json()["session_id"], opened.json()["token"]
    restarted = post(client, f"/sessions/{sid}/challenge", {}, token)
    assert restarted.status_code == 200
    assert set(restarted.json()) == answer_keys("| `POST /sessions/{id}/challenge` ", 200)
