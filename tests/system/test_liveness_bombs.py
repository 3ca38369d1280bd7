"""Decode bombs against a real gunicorn: each gets its 400, never at another client's expense
(in-process: tests/liveness/test_liveness_bombs.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from bench.corpus import CASES
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import gunicorn

pytestmark = pytest.mark.system

CORRUPT = {"error": "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."}
BOMBS = sorted(name for name in CASES if name.startswith("bomb-"))


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
