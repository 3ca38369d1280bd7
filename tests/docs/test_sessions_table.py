"""docs/integrator/sessions.md's table of calls names the keys of each success answer; they are
the keys the service answers (Django's test client, the real engine): a session opened, read
while open and once done, a quality frame, a burst selfie, a head-turn challenge restarted, a
when_unsure selfie held. The error table's replay, busy and selfie_held rows are the bodies
answered, and the "Nothing else is kept" item names every column of a session's row."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test.client import Client

from capture import service
from capture.models import CaptureSession
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


def error_row(case: str) -> tuple[int, dict[str, Any]]:
    """The status and the JSON body the token calls' error table gives for ``case``."""
    line = next(
        line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith(case)
    )
    shown = re.search(r"\| (\d{3}) \| `(\{.*\})` \|$", line)
    assert shown is not None, case
    return int(shown[1]), json.loads(shown[2])


def test_a_replay_of_each_token_call_answers_the_row(make_tenant: Any, client: Client) -> None:
    """A session with its verdict: a selfie, a quality frame and a challenge retry are each
    answered as the table's replay row says (the retry included)."""
    _, secret = make_tenant(request_limit=5)
    opened = client.post("/sessions", {"hash_id": secret}, content_type="application/json")
    sid, token, image = opened.json()["session_id"], opened.json()["token"], data_uri(LIVE_JPG)
    assert (
        post(client, f"/sessions/{sid}/selfie", {"selfie_image": image}, token).status_code == 202
    )
    status, body = error_row("| a selfie, quality call or challenge retry on a session that has")
    for call, payload in (("selfie", {"selfie_image": image}), ("quality", {}), ("challenge", {})):
        replay = post(client, f"/sessions/{sid}/{call}", payload, token)
        assert (call, replay.status_code, replay.json()) == (call, status, body)


def test_each_token_call_on_a_session_being_judged_answers_the_row(
    make_tenant: Any, client: Client
) -> None:
    """A session claimed by a selfie (``service.claim``, as a selfie in flight holds it): a
    second selfie, a quality frame and a challenge retry are each answered as the table's
    busy row says."""
    _, secret = make_tenant(request_limit=5)
    opened = client.post("/sessions", {"hash_id": secret}, content_type="application/json")
    sid, token, image = opened.json()["session_id"], opened.json()["token"], data_uri(LIVE_JPG)
    assert service.claim(CaptureSession.objects.get(pk=sid))
    status, body = error_row("| a selfie, quality call or challenge retry while a selfie of")
    for call, payload in (("selfie", {"selfie_image": image}), ("quality", {}), ("challenge", {})):
        busy = post(client, f"/sessions/{sid}/{call}", payload, token)
        assert (call, busy.status_code, busy.json()) == (call, status, body)


def held_session(make_tenant: Any, client: Client) -> tuple[str, str, str, Any]:
    """A when_unsure session whose selfie is held: the widest band (10 logits) holds any score
    the engine gives. Its id, token, tenant's hash_id and the selfie's 202."""
    _, secret = make_tenant(request_limit=5, challenge="when_unsure", challenge_band=10.0)
    opened = client.post("/sessions", {"hash_id": secret}, content_type="application/json")
    sid, token = opened.json()["session_id"], opened.json()["token"]
    selfie = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert selfie.status_code == 202, selfie.content
    return sid, token, secret, selfie


def test_a_held_selfie_answers_what_the_pages_give(make_tenant: Any, client: Client) -> None:
    """The 202 of a held selfie: the table's keys plus the section's `challenge` object, as the
    section prints it; the session then reads open and pending; a second selfie is 409 as the
    error table's selfie_held row prints it."""
    sid, token, secret, selfie = held_session(make_tenant, client)
    assert set(selfie.json()) == answer_keys("| `POST /sessions/{id}/selfie` ", 202) | {"challenge"}
    section = re.sub(r"\s+", " ", PAGE.read_text(encoding="utf-8"))
    printed = re.search(r'the 202 adds `"challenge": (\{[^`]*\})`', section)
    assert printed is not None
    assert selfie.json()["challenge"] == json.loads(printed[1])
    state = client.get(f"/sessions/{sid}", HTTP_X_HASH_ID=secret).json()
    assert set(state) == answer_keys("| `GET /sessions/{id}` ", 200)
    assert (state["state"], state["challenge"], state["liveness_result"]) == (
        "open",
        "pending",
        None,
    )
    status, body = error_row("| a second selfie on a session whose selfie is")
    again = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (again.status_code, again.json()) == (status, body)


# How the "Nothing else is kept" item names each column of a capture session's row.
KEPT_WORDS = {
    "id": "a session row",
    "tenant": "the tenant",
    "credential": "the hash_id it was opened with",
    "token_digest": "token digest",
    "created_at": "times",
    "expires_at": "times",
    "finished_at": "times",
    "state": "state",
    "is_live": "is_live",
    "score": "score",
    "capture": "capture kind",
    "frames": "frame count",
    "refused_code": "refusal code",
    "selfie_check": "that record's id",
    "selfie_request_id": "and request id",
    "challenge_mode": "the challenge rule it was opened under",
    "challenge_band": "`when_unsure` band",
    "challenge": "head-turn challenge",
    "challenge_code": "failure code",
    "challenge_tries": "tries",
    "challenge_judge": "the judge's state",
    "challenge_version": "the judge's state",  # orders the polls that write it
    "token_calls": "its count of token calls",
}


def test_what_a_session_keeps_is_its_rows_columns() -> None:
    """Every column of capture_capturesession is named in the "Nothing else is kept" item: a
    column added without a word here, or left out of the page, fails."""
    flat = re.sub(r"\s+", " ", PAGE.read_text(encoding="utf-8"))
    item = flat.split("**Nothing else is kept**", 1)[1].split("`manage.py prune_sessions", 1)[0]
    columns = [field.name for field in CaptureSession._meta.concrete_fields]
    assert [c for c in columns if c not in KEPT_WORDS or KEPT_WORDS[c] not in item] == []
