"""The real server: gunicorn with the post_fork warm-up, then the seed guide's own client flow."""

import base64
import mimetypes
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.gunicorn import start_gunicorn
from tests.conftest import LIVE_JPG, SPOOF_JPG
from tests.servers.processes import STARTUP_S, free_port, manage, stop

pytestmark = pytest.mark.system


def wait_live(base: str, timeout: float = STARTUP_S) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            response = requests.get(f"{base}/status_check", timeout=30)
            if response.status_code == 200:
                assert response.text == "Service is live"
                return time.monotonic() - start
        except requests.RequestException:
            pass  # not accepting yet, or workers still compiling
        time.sleep(0.2)
    raise AssertionError("server never became live")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """gunicorn on a free port with its own SQLite database and a fresh tenant."""
    work = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
    }
    manage(env, "migrate", "-v0")
    hash_id = manage(env, "create_tenant", "seed-client", "--limit", "3").strip().splitlines()[-1]
    log = (work / "gunicorn.log").open("w")
    process = start_gunicorn(env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_live(base)
        yield base, hash_id
    finally:
        stop(process)
        log.close()


def encode_image_with_mime(image_path: Path) -> str:
    """As in the seed guide's testing script."""
    mime_type, _ = mimetypes.guess_type(str(image_path))
    with open(image_path, "rb") as img_file:
        return f"data:{mime_type};base64,{base64.b64encode(img_file.read()).decode('utf-8')}"


def test_seed_client_flow(server: tuple[str, str]) -> None:
    base, hash_id = server
    verdicts = []
    for path in (LIVE_JPG, SPOOF_JPG):
        json_data = {"hash_id": hash_id, "selfie_image": encode_image_with_mime(path)}
        r = requests.post(f"{base}/liveness", json=json_data, timeout=30)
        assert r.status_code == 201
        assert r.headers["X-Request-ID"]
        verdicts.append(r.json()["liveness_result"]["is_live"])
    assert verdicts == [1, 0]


def test_wrong_hash_id_and_limit(server: tuple[str, str]) -> None:
    base, hash_id = server
    body = {"hash_id": "wrong", "selfie_image": encode_image_with_mime(LIVE_JPG)}
    r = requests.post(f"{base}/liveness", json=body, timeout=30)
    assert (r.status_code, r.json()) == (401, {"message": "Invalid credentials"})
    body["hash_id"] = hash_id
    statuses = [
        requests.post(f"{base}/liveness", json=body, timeout=30).status_code for _ in range(2)
    ]
    assert statuses == [201, 429]


def test_admin_and_docs_static_are_served(server: tuple[str, str]) -> None:
    base, _ = server
    assert requests.get(f"{base}/admin/login/", timeout=30).status_code == 200
    assert requests.get(f"{base}/static/admin/css/base.css", timeout=30).status_code == 200
    assert requests.get(f"{base}/api/docs/", timeout=30).status_code == 200
