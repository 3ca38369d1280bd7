"""How an answer's status and Retry-After are read: RFC 9110's Retry-After (delta-seconds or an
HTTP-date), and a 400 that is an image's refusal told from one that is not (liveness.answers'
table is the service's one list of answers)."""

import email.utils
import json
import time
from typing import Any

import pytest

from facia_client import (
    FaciaClient,
    ImageRejected,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    Session,
)
from facia_client.client import MAX_RETRY_AFTER
from liveness import answers
from tests.conftest import LIVE_JPG
from tests.facia_client.test_client import answering, run_cli


def json_answer(status: bytes, body: dict[str, object], extra: bytes = b"") -> bytes:
    data = json.dumps(body).encode()
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        status,
        extra,
        len(data),
        data,
    )


def throttled(retry_after: str) -> bytes:
    return json_answer(
        b"429 Too Many Requests",
        {"error": "Too many failed authentication attempts. Try again later."},
        b"Retry-After: %s\r\n" % retry_after.encode(),
    )


RETRY_AFTERS = {
    "seconds": ("120", 120.0),
    "zero": ("0", 0.0),
    "over the maximum": ("99999999", MAX_RETRY_AFTER),
    "huge": ("1" + "0" * 400, MAX_RETRY_AFTER),
    "nan": ("nan", None),
    "inf": ("inf", None),
    "1e400": ("1e400", None),
    "negative": ("-5", None),
    "a fraction": ("1.5", None),
    "underscores": ("1_0", None),
    "empty": ("", None),
}


@pytest.mark.parametrize("header, seconds", RETRY_AFTERS.values(), ids=RETRY_AFTERS.keys())
def test_retry_after_is_delta_seconds(header: str, seconds: float | None) -> None:
    """float() took nan, inf, 1e400, -5 and 1_0 (the command then printed NaN or Infinity:
    not JSON) and 99999999 (three years)."""
    with answering(throttled(header)) as url, pytest.raises(QuotaExceeded) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert caught.value.retry_after == seconds
    assert isinstance(caught.value, RateLimited) == (seconds is not None)
    with answering(throttled(header)) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--timeout", "10", hash_id="x")
    assert done.returncode == 5, done.stderr
    failure = json.loads(done.stderr, parse_constant=lambda name: pytest.fail(name))
    assert failure.get("retry_after") == seconds


def test_retry_after_as_an_http_date_is_a_throttle() -> None:
    """A proxy's throttle with an HTTP-date: no retry_after, and QuotaExceeded (the tenant's
    limit) instead of RateLimited."""
    date = email.utils.formatdate(time.time() + 60, usegmt=True)
    with answering(throttled(date)) as url, pytest.raises(RateLimited) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert caught.value.retry_after is not None and 55 <= caught.value.retry_after <= 61
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    with answering(throttled(past)) as url, pytest.raises(RateLimited) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert caught.value.retry_after == 0


def test_a_503s_retry_after_is_read_the_same_way() -> None:
    busy = json_answer(b"503 Busy", {"error": answers.NOT_READY}, b"Retry-After: nan\r\n")
    with answering(busy) as url, pytest.raises(ServiceError) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert caught.value.retry_after is None


def answered(code: str, **detail: object) -> bytes:
    """The service's own answer for ``code`` (liveness.answers), as bytes on the wire."""
    response = answers.respond(answers.Rejection(code, detail))
    return json_answer(f"{response.status_code} X".encode(), json.loads(response.content))


IMAGE_REFUSALS: dict[str, dict[str, Any]] = {
    "image_required": {},
    "image_not_a_string": {},
    "image_invalid": {},
    "image_too_many_scans": {"limit": 10},
    "image_too_many_pixels": {"width": 4608, "height": 3456, "pixels": 4608 * 3456, "limit": 1},
    "malformed_json": {},
    "not_an_object": {},
    "duplicate_key": {"key": "'hash_id'"},
    "body_too_large": {"limit": 16777216},
}
OTHER_400S: dict[str, dict[str, Any]] = {
    "host_not_allowed": {"host": "'facia.internal'"},
    "bad_request": {},
    "hash_id_not_a_string": {},
    "idempotency_key_invalid": {},
    "idempotency_key_repeated": {},
}


def test_the_lists_cover_every_400_and_413_the_service_answers() -> None:
    """A 400 added to liveness.answers must be placed in one list or the other."""
    refusals = {code for code, a in answers.ANSWERS.items() if a.status in (400, 413)}
    session_only = {
        "frames_invalid",
        "more_time_invalid",
    }  # the token calls send_selfie does not make
    assert refusals == set(IMAGE_REFUSALS) | set(OTHER_400S) | session_only


@pytest.mark.parametrize("code", IMAGE_REFUSALS)
def test_an_images_refusal_is_image_rejected(code: str) -> None:
    raw = answered(code, **IMAGE_REFUSALS[code])
    with answering(raw) as url, pytest.raises(ImageRejected):
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    session = Session("s1", "t", "z", 300)
    with answering(raw) as url, pytest.raises(ImageRejected):
        FaciaClient(url, "x", timeout=10).send_selfie(session, LIVE_JPG)


@pytest.mark.parametrize("code", OTHER_400S)
def test_another_400_is_a_service_error(code: str) -> None:
    """The service's "Host ... is not allowed: add it to ... ALLOWED_HOSTS" (the commonest
    first-deploy mistake) was "image refused", exit 4."""
    raw = answered(code, **OTHER_400S[code])
    with answering(raw) as url, pytest.raises(ServiceError) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert not isinstance(caught.value, ImageRejected)
    with answering(raw) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--timeout", "10", hash_id="x")
    assert done.returncode == 6, done.stderr
    failure = json.loads(done.stderr)
    assert failure["status"] == 400
    if code == "host_not_allowed":
        assert "ALLOWED_HOSTS" in failure["error"]


def test_a_400_to_a_session_call_is_a_service_error() -> None:
    """session open and session get send no image: their 400 is not an image refused."""
    raw = answered("host_not_allowed", host="'facia.internal'")
    for args in (("open",), ("get", "s1")):
        with answering(raw) as url:
            done = run_cli("session", *args, "--url", url, "--timeout", "10", hash_id="x")
        assert done.returncode == 6, done.stderr
    with answering(answered("malformed_json")) as url, pytest.raises(ServiceError) as caught:
        FaciaClient(url, "x", timeout=10).open_session()
    assert not isinstance(caught.value, ImageRejected)


def test_a_workers_400_is_a_service_error() -> None:
    """gunicorn's own 400 for a request it cannot parse (HTML, not the service's JSON)."""
    raw = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nBad Request"
    with answering(raw) as url, pytest.raises(ServiceError) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert not isinstance(caught.value, ImageRejected)
