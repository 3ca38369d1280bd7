"""The server's logs: one JSON object per line, request ids, never an image or a hash_id, one
line per expected 4xx."""

import json
import uuid

import pytest
import requests

from tests.conftest import DEV_DATA, LIVE_JPG, b64
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system

MARKER = "ZZMARKER" + uuid.uuid4().hex.upper()


def test_json_lines_with_request_ids_and_no_secrets(served: Served) -> None:
    _, hash_id = served.new_tenant()
    image_b64 = b64(LIVE_JPG.read_bytes())
    sent = {
        "valid": {"hash_id": hash_id, "selfie_image": f"data:image/jpeg;base64,{image_b64}"},
        "unknown-id": {"hash_id": MARKER, "selfie_image": image_b64},
        "bad-image": {"hash_id": hash_id, "selfie_image": f"data:image/png;base64,{MARKER}"},
    }
    ids = {}
    for case, body in sent.items():
        ids[case] = f"logtest-{case}-{uuid.uuid4().hex[:8]}"
        headers = {"X-Request-ID": ids[case]}
        requests.post(f"{served.base}/liveness", json=body, headers=headers, timeout=30)
    malformed = f'{{"hash_id": "{MARKER}", "selfie_image": '
    requests.post(f"{served.base}/liveness", data=malformed, timeout=30)

    text = served.log_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"timestamp", "levelname", "message", "request_id"} <= set(r) for r in lines)
    for secret in (MARKER, hash_id, image_b64[:40], image_b64[-40:]):
        assert secret not in text
    for case, request_id in ids.items():
        mine = [r for r in lines if r["request_id"] == request_id]
        assert any(r["name"] == "facia.request" and r["path"] == "/liveness" for r in mine), case
    # The check record's line carries the id too.
    valid = [r["name"] for r in lines if r["request_id"] == ids["valid"]]
    assert "liveness.checks" in valid
    # An expected 4xx (the 401) is its one facia.request line, no django.request warning.
    unknown = [r["name"] for r in lines if r["request_id"] == ids["unknown-id"]]
    assert unknown.count("facia.request") == 1 and "django.request" not in unknown


@pytest.mark.parametrize("path", ["/status_check", "/no-such-page", "/admin/login/"])
def test_a_head_answer_is_its_one_request_line(served: Served, path: str) -> None:
    """A HEAD is answered as its GET without the body, and logged as its GET is: one
    facia.request line. With the body left to gunicorn to drop, each HEAD of a page with a body
    (a load balancer's probe of /status_check) added gunicorn's WARNING "WSGI app sent body
    bytes on a no-body response"."""
    request_id = f"logtest-head-{uuid.uuid4().hex[:8]}"
    got = requests.get(f"{served.base}{path}", timeout=30)
    head = requests.head(f"{served.base}{path}", headers={"X-Request-ID": request_id}, timeout=30)
    assert head.status_code == got.status_code and got.content
    assert head.headers["Content-Length"] == str(len(got.content))
    records = [json.loads(line) for line in served.log_text().splitlines() if line.strip()]
    mine = [(r["name"], r["levelname"]) for r in records if r["request_id"] == request_id]
    assert mine == [("facia.request", "INFO")]


def test_a_damaged_jpeg_writes_no_bare_line(served: Served) -> None:
    """libjpeg writes its "Corrupt JPEG data" warning straight to stderr, and OpenCV's logger
    its own bare lines: with LOG_FORMAT=json every line must still be a JSON record."""
    _, hash_id = served.new_tenant()
    jpeg = (DEV_DATA / "live" / "jomariya_1.jpg").read_bytes()
    png = LIVE_JPG.with_name("apfol_1.png").read_bytes()
    images = {
        "cut-jpeg": jpeg[: len(jpeg) // 3] + b"\xff\xd9",
        "padded-jpeg": jpeg[:-2] + bytes(100) + b"\xff\xd9",  # benign: judged
        "cut-png": png[: len(png) // 2] + png[-12:],
    }
    ids = {}
    for case, image in images.items():
        ids[case] = f"logtest-{case}-{uuid.uuid4().hex[:8]}"
        reply = requests.post(
            f"{served.base}/liveness",
            json={"hash_id": hash_id, "selfie_image": b64(image)},
            headers={"X-Request-ID": ids[case]},
            timeout=30,
        )
        assert reply.status_code == (201 if case == "padded-jpeg" else 400), case
    text = served.log_text()
    bare = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    assert bare == []
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    for request_id in ids.values():
        assert any(r["request_id"] == request_id for r in records)
