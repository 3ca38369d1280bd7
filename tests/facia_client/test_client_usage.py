"""Mistyped arguments are usage errors (exit 2), never a traceback (exit 1, which reads as a
spoof), and a usage error never repeats a value typed (docs/integrator/client.md)."""

import json
import os
import uuid
from pathlib import Path

import pytest

from facia_client import FaciaClient, ServiceError, UsageError
from tests.conftest import LIVE_JPG, REPO
from tests.facia_client.test_client import answer, answering, run_cli

SECRET = "hid_Zx8QmV2pLr7TnK4s"

BAD_URLS = {
    "empty label": "http://a..b:5001",
    "label of 70": f"http://{'a' * 70}.example:5001",
    "non-ASCII path": "http://127.0.0.1:9/\u00e9",
    "space in path": "http://127.0.0.1:9/a b",
    "control in path": "http://127.0.0.1:9/a\tb",
    "user and password": "http://user:s3cret@127.0.0.1:9",
    # the endpoint's path went after a query or fragment: POST //liveness, a bare 404
    "query": "http://127.0.0.1:9/?a=1",
    "empty query": "http://127.0.0.1:9?",
    "fragment": "http://127.0.0.1:9/#f",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_bad_url_is_a_usage_error(url: str) -> None:
    """A traceback and exit 1 (idna's UnicodeError, http.client's UnicodeEncodeError), or
    exit 6 for a space in the path."""
    with pytest.raises(UsageError, match="--url"):
        FaciaClient(url, "x")
    done = run_cli(str(LIVE_JPG), "--url", url, hash_id="x")
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stderr)  # one object, nothing else
    assert error["exit_code"] == 2 and "--url" in error["error"]
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("seconds", ["1e10", "1e300"])
def test_a_timeout_too_large_is_a_usage_error(seconds: str) -> None:
    """threading.Timer's OverflowError: a traceback printed twice, exit 1."""
    done = run_cli(str(LIVE_JPG), "--url", "http://127.0.0.1:9", "--timeout", seconds, hash_id="x")
    assert done.returncode == 2, done.stderr
    assert "--timeout" in json.loads(done.stderr)["error"]
    with pytest.raises(UsageError):
        FaciaClient("http://127.0.0.1:9", "x", timeout=float(seconds))


def test_a_timeout_of_true_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--timeout"):
        FaciaClient("http://127.0.0.1:9", "x", timeout=True)


def test_an_infinite_expires_in_is_a_service_error() -> None:
    """int(Infinity) raised OverflowError: a traceback, exit 1."""
    body = b'{"session_id": "a", "token": "t", "expires_at": "z", "expires_in": Infinity}'
    raw = answer(b"201 Created", body)
    with answering(raw) as url, pytest.raises(ServiceError, match="unexpected answer"):
        FaciaClient(url, "x", timeout=10).open_session()
    with answering(raw) as url:
        done = run_cli("session", "open", "--url", url, hash_id="x")
    assert done.returncode == 6, done.stderr
    assert json.loads(done.stderr)["exit_code"] == 6


URLS_WITH_THE_SECRET = {
    "hash_id as url": SECRET,
    "hash_id as port": f"http://x:{SECRET}",
    "hash_id as host": f"http://{SECRET}..x",
    "hash_id as password": f"http://user:{SECRET}@127.0.0.1:9",
}


@pytest.mark.parametrize("url", URLS_WITH_THE_SECRET.values(), ids=URLS_WITH_THE_SECRET.keys())
def test_a_url_error_never_repeats_the_url(url: str) -> None:
    done = run_cli(str(LIVE_JPG), "--url", url, hash_id="x")
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stderr + done.stdout
    with pytest.raises(UsageError) as caught:
        FaciaClient(url, "x")
    assert SECRET not in str(caught.value)


def test_a_selfie_path_error_never_repeats_the_path(tmp_path: Path) -> None:
    """A hash_id typed where the selfie goes: "cannot read <hash_id>: No such file"."""
    done = run_cli(SECRET, "--url", "http://127.0.0.1:9", hash_id="x")
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stderr
    assert "cannot read the selfie" in json.loads(done.stderr)["error"]


def test_a_path_with_a_nul_is_a_usage_error() -> None:
    """os.open's ValueError (embedded null byte) went up raw."""
    with pytest.raises(UsageError, match="cannot read"):
        FaciaClient("http://127.0.0.1:9", "x").check("a\0b.jpg")


@pytest.mark.parametrize(
    "args",
    [
        ("--url", "ftp://127.0.0.1:9"),
        ("--url", "http://127.0.0.1:9", "--timeout", "0"),
        ("--url", "http://127.0.0.1:9", "--idempotency-key", "a,b"),
    ],
    ids=["url", "timeout", "key"],
)
def test_every_usage_error_points_to_help(args: tuple[str, ...]) -> None:
    """client.md: a usage error ends with a pointer to --help (argparse's did, the client's
    own did not)."""
    done = run_cli(str(LIVE_JPG), *args, hash_id="x")
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stderr)["error"].endswith("(see facia-client --help)")
    session = run_cli("session", "open", "--url", "ftp://x", hash_id="x")
    assert json.loads(session.stderr)["error"].endswith("(see facia-client session --help)")


def test_a_uuid_idempotency_key_is_sent_as_text() -> None:
    """check(img, idempotency_key=uuid.uuid4()) raised a raw AttributeError."""
    key = uuid.uuid4()
    heads: list[bytes] = []
    body = b'{"liveness_result": {"is_live": 1, "liveness_score": 0.9}, "message": "Success"}'
    with answering(answer(b"201 Created", body), heads=heads) as url:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG, idempotency_key=key)
    assert f"Idempotency-Key: {key}".encode() in heads[0].split(b"\r\n")
    with pytest.raises(UsageError, match="idempotency key"):
        FaciaClient(url, "x").check(LIVE_JPG, idempotency_key=42)  # type: ignore[arg-type]  # not a key


def test_the_key_is_checked_before_the_image_is_read(tmp_path: Path) -> None:
    """A bad key was found only after reading and encoding up to 64 MiB: a missing file now
    still says the key is wrong."""
    with pytest.raises(UsageError, match="idempotency key"):
        FaciaClient("http://127.0.0.1:9", "x").check(tmp_path / "missing.jpg", "a,b")


def test_an_unexpected_exception_exits_6_with_one_json_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug or an unforeseen exception: exit 6 and one JSON object, never a traceback and
    exit 1 (a spoof). Forced here with a sitecustomize that breaks open_session."""
    (tmp_path / "sitecustomize.py").write_text(
        "import facia_client.client as c\n"
        "def broken(*a, **k):\n    raise RuntimeError('boom')\n"
        "c.FaciaClient.open_session = broken\n"
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{REPO}")
    done = run_cli("session", "open", "--url", "http://127.0.0.1:9", hash_id="x")
    assert done.returncode == 6, done.stderr
    error = json.loads(done.stderr)
    assert error["exit_code"] == 6 and error["status"] is None
    assert "RuntimeError" in error["error"]


def test_an_answers_error_text_is_cut() -> None:
    """A JSON "error" went into the message whole (a body's text is cut at 200 characters)."""
    raw = answer(b"500 Oops", b'{"error": "%s"}' % (b"x" * 100_000))
    with answering(raw) as url, pytest.raises(ServiceError) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert len(str(caught.value)) < 220
