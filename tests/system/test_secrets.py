"""Nothing keeps an image, a base64 body or a full hash_id: a real gunicorn (debug logging)
is sent marker images and hash_ids on every path (in the body, and in the URL and Host where
none belongs), requests it cannot parse included, then its
database files, its log output and the temp directories are searched for them."""

import base64
import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import LIVE_JPG
from tests.servers.clients import create_tenant
from tests.servers.gunicorn import gunicorn
from tests.servers.raw_http import connect, received

pytestmark = pytest.mark.system


def with_marker(jpeg: bytes, marker: bytes) -> bytes:
    """The JPEG with the marker in a comment segment and again after end-of-image."""
    comment = b"\xff\xfe" + (len(marker) + 2).to_bytes(2, "big") + marker
    return jpeg[:2] + comment + jpeg[2:] + marker


def needles(image: bytes, marker: bytes) -> dict[str, bytes]:
    """What must not be found: the marker raw, and the base64 text around it."""
    text = base64.b64encode(image)
    at = image.index(marker) * 4 // 3
    return {
        "raw marker": marker,
        "base64 of the marker region": text[at + 4 : at + 4 + len(marker)],
        "base64 head": text[100:164],
        "base64 tail": text[-80:-16],
        "urlsafe base64 head": base64.urlsafe_b64encode(image)[100:164],
    }


def files_under(*roots: Path, since: float) -> list[Path]:
    found = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file() and stat.st_mtime >= since and stat.st_size < 200_000_000:
                found.append(path)
    return found


def system_temp_files(since: float) -> list[Path]:
    """Files directly in the system temp dir written during the test (not other users' dirs)."""
    tmp = Path("/tmp")
    return [p for p in tmp.iterdir() if p.is_file() and _mtime(p) >= since]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def malformed(hash_id: str) -> dict[bytes, int]:
    """Requests gunicorn cannot parse, each holding the hash_id, and the status each gets. Its
    own log line quoted the bytes it refused: the first line of a body sent as chunked but
    unframed (up to 8,190 bytes), the request line with its query string, and at debug level
    the head of a client that closed mid-way."""
    body = json.dumps({"hash_id": hash_id}).encode()
    chunked = b"POST /sessions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    return {
        chunked + body + b"\r\n0\r\n\r\n": 400,
        b"GET /liveness?hash_id=%s\r\n\r\n" % hash_id.encode(): 400,  # no HTTP version
        b"GET / HTTP/1.1\r\nX-Hash-Id: %s" % hash_id.encode(): 0,  # the head never ends
    }


def send_raw(port: int, request: bytes) -> int:
    """The status of the answer to ``request`` (0: closed unanswered), sent whole, then the
    connection half-closed: a head that has not ended is one the client gave up on."""
    with connect(port) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = received(sock)
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_no_image_body_or_hash_id_is_written_anywhere(tmp_path: Path) -> None:
    started = time.time() - 1
    marker = f"MARKER-{uuid.uuid4().hex}-END".encode()
    image = with_marker(LIVE_JPG.read_bytes(), marker)
    broken = image[: len(image) // 2] + marker  # truncated: refused as corrupt
    wrong_hash_id = f"WRONG{uuid.uuid4().hex}{uuid.uuid4().hex}"[:43]
    with gunicorn(tmp_path, 2, LOG_LEVEL="DEBUG") as server:
        hash_id = create_tenant(server.env, "marker")
        url = f"{server.base}/liveness"

        def send(hash_value: str, data: bytes, prefix: str = "data:image/jpeg;base64,") -> int:
            body = {"hash_id": hash_value, "selfie_image": prefix + base64.b64encode(data).decode()}
            return requests.post(url, json=body, timeout=60).status_code

        assert send(hash_id, image) == 201
        assert send(hash_id, image, prefix="") == 201
        assert send(hash_id, broken) == 400
        assert send(wrong_hash_id, image) == 401
        multipart = requests.post(
            url, files={"selfie_image": ("s.jpg", image * 40, "image/jpeg")}, timeout=60
        )
        assert multipart.status_code == 400  # never parsed as a form, never spooled to disk
        too_big = requests.post(
            url, data=json.dumps({"hash_id": hash_id}) + " " * 17_000_000, timeout=60
        )
        assert too_big.status_code == 413
        # Where no hash_id belongs: the path, the query string, the Host.
        misplaced = requests.get(f"{url}/{hash_id}?hash_id={hash_id}", timeout=60)
        assert misplaced.status_code == 404
        assert requests.get(url, headers={"Host": hash_id}, timeout=60).status_code == 400
        for request, status in malformed(hash_id).items():
            assert send_raw(server.port, request) == status, request[:40]
    searched = files_under(tmp_path, since=started) + system_temp_files(started)
    assert any(p.name == "db.sqlite3" for p in searched)
    assert any(p.name == "gunicorn.log" for p in searched)
    # The search does see what is stored and logged: the prefix and the request log lines.
    # Stored means in the database file or in its write-ahead log, wherever the last checkpoint
    # left it (a worker stopped before closing its connection leaves the log behind).
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite3*"))
    assert hash_id[:8].encode() in stored
    log = (tmp_path / "gunicorn.log").read_bytes()
    assert b"check tenant=" in log
    assert b'"path": "/liveness/<redacted:43>"' in log
    assert b"Invalid HTTP_HOST header: '<redacted:43>'" in log
    forbidden = {
        **needles(image, marker),
        "full hash_id": hash_id.encode(),
        "wrong hash_id": wrong_hash_id.encode(),
    }
    for path in searched:
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # another process's temporary file, gone since listed
            continue
        for what, needle in forbidden.items():
            assert needle not in content, f"{what} found in {path}"
    # The malformed requests were logged, each by its kind alone.
    assert b"Invalid request from ip=127.0.0.1: Malformed chunked body. (InvalidChunkSize)" in log
    assert b"Invalid request from ip=127.0.0.1: Malformed request line. (InvalidRequestLine)" in log
    assert b"Ignored premature client disconnection. NoMoreData" in log
    assert os.listdir(tmp_path / "tmp") == []  # the server's own TMPDIR stayed empty
