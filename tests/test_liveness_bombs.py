"""Decode bombs and other cheap-to-send, costly-to-answer requests: refused in bounded work,
never at another client's expense."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.corpus import CASES, Request
from liveness.checks import strip_data_uri
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import gunicorn

SEMICOLON_FIELD = "data:" + ";" * (16 * 1024 * 1024)
CORRUPT = {"error": "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."}
LIMIT_REACHED = {"message": "Your request limit has been reached."}
BOMBS = sorted(name for name in CASES if name.startswith("bomb-"))


def test_data_uri_of_16mb_semicolons_parses_in_bounded_memory() -> None:
    tracemalloc.start()
    try:
        assert strip_data_uri(SEMICOLON_FIELD) is SEMICOLON_FIELD  # no prefix: left as it is
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # the old regex peaked at 2.75 GB here


def test_options_is_not_allowed(db: None, client: Any) -> None:
    response = client.options("/liveness")
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "OPTIONS" not allowed.'}
    assert response["Allow"] == "POST"


@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("name", BOMBS)
def test_tenant_at_its_limit_never_reaches_the_decoder(
    name: str, make_tenant: Any, client: Any
) -> None:
    # Decoded, each of these is a 400; a 429 means the image was never looked at.
    _, secret = make_tenant(f"full-{name}", request_limit=3, requests_used=3)
    request: Request = CASES[name](secret)
    response = client.post("/liveness", data=request.body, content_type=request.content_type)
    assert (response.status_code, response.json()) == (429, LIMIT_REACHED)


@pytest.mark.slow
def test_bombs_get_their_400_while_another_client_is_served(tmp_path: Path) -> None:
    with gunicorn(tmp_path, 2) as server:
        attacker = create_tenant(server.env, "attacker")
        bodies = [CASES[name](attacker).body for name in BOMBS]
        customer = selfie_body(create_tenant(server.env, "customer"))
        served_all = threading.Event()
        answers: list[tuple[int, object]] = []

        def attack() -> None:  # every bomb at least once, and on until the customer is served
            rounds = 0
            while rounds == 0 or not served_all.is_set():
                answers.extend(_post_json(server.base, body) for body in bodies)
                rounds += 1

        threads = [threading.Thread(target=attack) for _ in range(2)]
        for thread in threads:
            thread.start()
        served = [post(server.base, customer, f"customer-{i}").status for i in range(3)]
        served_all.set()
        for thread in threads:
            thread.join()
    assert served == [201, 201, 201]
    assert len(answers) >= 2 * len(BOMBS)
    assert set(answers) == {(400, str(CORRUPT))}


def _post_json(base: str, body: bytes) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    response = requests.post(f"{base}/liveness", data=body, headers=headers, timeout=60)
    return response.status_code, str(response.json())
