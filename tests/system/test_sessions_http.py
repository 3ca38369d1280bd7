"""Capture sessions against real gunicorn workers: two selfies at once give one verdict."""

import threading
from typing import Any

import pytest
import requests

from tests.conftest import LIVE_JPG, SPOOF_JPG, data_uri
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system

TENANT_STATE = """
from accounts.models import Tenant
from liveness.models import LivenessCheck
t = Tenant.objects.get(name={name!r})
print(t.requests_used, LivenessCheck.objects.filter(tenant=t, refused_code="").count())
"""


def race_two_selfies(url: str, token: str) -> list[Any]:
    """Post two different selfies on one session at the same moment; both answers."""
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def send(image: str) -> None:
        barrier.wait()
        headers = {"Authorization": f"Bearer {token}"}
        answers.append(requests.post(url, json={"selfie_image": image}, headers=headers))

    images = [data_uri(LIVE_JPG), data_uri(SPOOF_JPG)]
    threads = [threading.Thread(target=send, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_two_concurrent_selfies_give_one_verdict(demo_served: Served) -> None:
    name, secret = demo_served.new_tenant(limit=10)
    base = demo_served.base
    for _ in range(3):  # a few rounds: the race window is short
        opened = requests.post(f"{base}/sessions", json={"hash_id": secret}, timeout=30).json()
        sid = opened["session_id"]
        answers = race_two_selfies(f"{base}/sessions/{sid}/selfie", opened["token"])
        assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
        read = requests.get(f"{base}/sessions/{sid}", headers={"X-Hash-Id": secret}, timeout=30)
        assert read.json()["state"] == "done" and read.json()["liveness_result"] is not None
    out = demo_served.manage("shell", "-c", TENANT_STATE.format(name=name))
    used, checks = out.strip().splitlines()[-1].split()
    assert (used, checks) == ("3", "3")  # exactly one unit and one record per session


def test_a_chunked_quality_body_meets_the_quality_limit(demo_served: Served) -> None:
    """A chunked body has no Content-Length: the 1 MiB quality limit holds on bytes read."""
    _, secret = demo_served.new_tenant()
    base = demo_served.base
    opened = requests.post(f"{base}/sessions", json={"hash_id": secret}, timeout=30).json()
    url = f"{base}/sessions/{opened['session_id']}/quality"
    headers = {"Authorization": f"Bearer {opened['token']}", "Content-Type": "application/json"}
    padding = " " * (1024 * 1024)  # JSON whitespace: a valid body, just too large for quality
    body = f'{{"selfie_image": "{data_uri(LIVE_JPG)}"}}{padding}'.encode()

    def chunks() -> Any:  # requests sends a generator chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    answer = requests.post(url, data=chunks(), headers=headers, timeout=30)
    assert answer.status_code == 413, answer.text
    assert answer.json() == {"error": "Request body is too large (limit 1048576 bytes)."}
    small = requests.post(url, data=iter([body[: -len(padding)]]), headers=headers, timeout=30)
    assert small.status_code == 200, small.text
