"""python -m facia_client against the real server: verdicts, errors and exit codes."""

import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from facia_client import (
    FaciaClient,
    ImageRejected,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceError,
)
from tests.conftest import LIVE_JPG, SPOOF_JPG
from tests.facia_client.test_client import run_cli
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system


def test_live_and_spoof_exit_codes(served: Served) -> None:
    _, hash_id = served.new_tenant()
    live = run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id)
    assert live.returncode == 0, live.stderr
    verdict = json.loads(live.stdout)
    assert verdict["is_live"] == 1 and 0.5 <= verdict["liveness_score"] <= 1
    assert verdict["request_id"]
    spoof = run_cli(str(SPOOF_JPG), "--url", served.base, f"--hash-id={hash_id}")
    assert spoof.returncode == 1, spoof.stderr
    assert json.loads(spoof.stdout)["is_live"] == 0


def test_a_hash_id_starting_with_a_dash_is_a_value_after_equals(served: Served) -> None:
    """Hash_ids issued before they stopped starting with "-" still work on the command line."""
    done = run_cli(str(LIVE_JPG), "--url", served.base, "--hash-id=-not-a-real-hash-id")
    assert done.returncode == 3, done.stderr  # answered 401, not a usage error (2)
    assert json.loads(done.stderr)["error"] == "HTTP 401: Invalid credentials"


def test_wrong_hash_id_exits_3(served: Served) -> None:
    done = run_cli(str(LIVE_JPG), "--url", served.base, hash_id="not-a-real-hash-id")
    assert done.returncode == 3
    failure = json.loads(done.stderr)
    assert failure == {
        "error": "HTTP 401: Invalid credentials",
        "status": 401,
        "exit_code": 3,
        "request_id": failure["request_id"],
    }
    assert done.stdout == ""


def test_corrupt_image_exits_4(served: Served, tmp_path: Path) -> None:
    _, hash_id = served.new_tenant()
    fake = tmp_path / "selfie.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    done = run_cli(str(fake), "--url", served.base, hash_id=hash_id)
    assert done.returncode == 4
    assert "Invalid or corrupt selfie image" in json.loads(done.stderr)["error"]


def test_quota_exits_5(served: Served) -> None:
    _, hash_id = served.new_tenant(limit=1)
    assert run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id).returncode == 0
    done = run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id)
    assert done.returncode == 5
    assert json.loads(done.stderr)["error"] == "HTTP 429: Your request limit has been reached."


def test_library_api(served: Served) -> None:
    _, hash_id = served.new_tenant(limit=1)
    client = FaciaClient(served.base, hash_id)
    verdict = client.check(LIVE_JPG)
    assert verdict.is_live and verdict.request_id
    with pytest.raises(QuotaExceeded) as caught:
        client.check(LIVE_JPG)
    assert caught.value.status == 429
    assert not isinstance(caught.value, ServiceError)


def no_face_jpg(tmp_path: Path) -> Path:
    path = tmp_path / "wall.jpg"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(path, "JPEG")
    return path


def test_422_code_is_surfaced(served: Served, tmp_path: Path) -> None:
    _, hash_id = served.new_tenant()
    with pytest.raises(ImageRejected) as caught:
        FaciaClient(served.base, hash_id).check(no_face_jpg(tmp_path))
    assert (caught.value.status, caught.value.code) == (422, "no_face")
    done = run_cli(str(no_face_jpg(tmp_path)), "--url", served.base, hash_id=hash_id)
    assert done.returncode == 4
    assert json.loads(done.stderr)["code"] == "no_face"


def limit_rate(served: Served, name: str) -> None:
    served.manage(
        "shell",
        "-c",
        "from accounts.models import Tenant; "
        f"Tenant.objects.filter(name={name!r}).update(rate_limit_per_minute=1)",
    )


def test_throttle_retry_after_is_surfaced(served: Served) -> None:
    name, hash_id = served.new_tenant()
    limit_rate(served, name)
    client = FaciaClient(served.base, hash_id)
    with pytest.raises(RateLimited) as caught:
        for _ in range(3):  # a minute window may end between two calls, never twice
            client.check(LIVE_JPG)
    assert isinstance(caught.value, QuotaExceeded) and caught.value.status == 429
    assert caught.value.retry_after is not None and 0 <= caught.value.retry_after <= 60
    done = [run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id) for _ in range(2)]
    throttled = [json.loads(d.stderr) for d in done if d.returncode == 5]
    assert throttled and 0 <= throttled[0]["retry_after"] <= 60


def test_quota_429_has_no_retry_after(served: Served) -> None:
    _, hash_id = served.new_tenant(limit=0)
    with pytest.raises(QuotaExceeded) as caught:
        FaciaClient(served.base, hash_id).check(LIVE_JPG)
    assert not isinstance(caught.value, RateLimited) and caught.value.retry_after is None


def test_capture_session_calls(served: Served) -> None:
    _, hash_id = served.new_tenant(limit=5)
    client = FaciaClient(served.base, hash_id)
    session = client.open_session()
    assert session.token and session.expires_in > 0
    assert client.session(session.session_id)["state"] == "open"
    assert client.send_selfie(session, LIVE_JPG)["state"] == "received"
    state = client.session(session.session_id)
    assert state["state"] == "done" and state["liveness_result"]["is_live"] == 1
    with pytest.raises(NotFound):
        client.session(str(uuid.uuid4()))


def test_capture_session_cli(served: Served) -> None:
    _, hash_id = served.new_tenant()
    opened = run_cli("session", "open", "--url", served.base, hash_id=hash_id)
    assert opened.returncode == 0, opened.stderr
    session_id = json.loads(opened.stdout)["session_id"]
    read = run_cli("session", "get", session_id, "--url", served.base, hash_id=hash_id)
    assert read.returncode == 0 and json.loads(read.stdout)["state"] == "open"
    wrong = run_cli("session", "get", session_id, "--url", served.base, hash_id="nope")
    assert wrong.returncode == 3
    assert run_cli("session", "get", "--url", served.base, hash_id=hash_id).returncode == 2
    for odd in ("é", "a b", "../../liveness"):  # unknown sessions (exit 6), never a traceback
        unknown = run_cli("session", "get", odd, "--url", served.base, hash_id=hash_id)
        assert unknown.returncode == 6, (odd, unknown.stderr)
        assert json.loads(unknown.stderr)["status"] == 404


@pytest.mark.parametrize("endpoint", ["/liveness", "/liveness/", "/sessions"])
def test_an_endpoints_url_gets_a_hint(served: Served, endpoint: str) -> None:
    """The seed's full endpoint URL as --url: POST /liveness/liveness, answered with a bare
    404 (exit 6) that did not say the URL was the wrong one."""
    _, hash_id = served.new_tenant()
    url = served.base + endpoint
    done = run_cli(str(LIVE_JPG), "--url", url, hash_id=hash_id)
    assert done.returncode == 6, done.stderr
    error = json.loads(done.stderr)
    assert error["status"] == 404
    assert error["error"].endswith("without the endpoint)"), error
    with pytest.raises(NotFound, match="give the service's address"):
        FaciaClient(url, hash_id).open_session()


def test_a_body_over_the_limit_is_refused_413(served: Served, tmp_path: Path) -> None:
    """client.md: exit 4 for a 413. The service answers it from Content-Length and closes
    without reading the body, so the client must read that answer even when its own sending
    was cut short (urllib.request gave up on the reset: 'cannot reach', exit 6)."""
    _, hash_id = served.new_tenant()
    big = tmp_path / "big.jpg"  # base64 makes it 16.7 MiB, over LIVENESS_MAX_BODY_BYTES
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * (12_600_000))
    with pytest.raises(ImageRejected) as caught:
        FaciaClient(served.base, hash_id).check(big)
    assert caught.value.status == 413 and caught.value.request_id
    assert caught.value.body == {"error": "Request body is too large (limit 16777216 bytes)."}
    done = run_cli(str(big), "--url", served.base, hash_id=hash_id)
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stderr)["status"] == 413


def test_a_retry_with_the_same_idempotency_key_spends_no_unit(served: Served) -> None:
    """Through gunicorn: the retry of the check that took the tenant's only unit gets its
    verdict again (replayed), and the next check without a key finds the quota spent once."""
    _, hash_id = served.new_tenant(limit=1)
    client = FaciaClient(served.base, hash_id, timeout=30)
    first = client.check(LIVE_JPG, idempotency_key="order-1")
    again = client.check(LIVE_JPG, idempotency_key="order-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.is_live, again.liveness_score) == (first.is_live, first.liveness_score)
    with pytest.raises(QuotaExceeded):
        client.check(LIVE_JPG)
