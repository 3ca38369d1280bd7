"""Requests gunicorn cannot parse, and transfer codings the worker does not decode, against a
real gunicorn: answered like every other refusal of the service (JSON ``{"error": ...}`` with
a fixed sentence, ``X-Request-ID``, ``Connection: close``), logged with that id and the same
sentence, and a body never read. Before, gunicorn answered an HTML page quoting the client's
bytes, with no request id, its log line quoted them too, and ``Transfer-Encoding: gzip,
chunked`` reached Django still compressed."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.processes import until
from tests.servers.raw_http import connect, read_answer

pytestmark = pytest.mark.system

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
TE_REFUSED = (
    "Transfer-Encoding other than chunked is not supported; send the body plain or chunked."
)
TE_INVALID = "Invalid Transfer-Encoding: send chunked once, last, over HTTP/1.1."
CL_INVALID = "Invalid Content-Length: send one decimal length, and none with Transfer-Encoding."
CHUNKS_INVALID = "Malformed chunked body."
HOST_INVALID = "Invalid Host: send one Host header field (HTTP/1.1 requires it)."
TOO_LARGE = "Request header fields are too large or too many."
POST = b"POST /liveness HTTP/1.1\r\nHost: 127.0.0.1\r\n"
GET = b"GET /status_check HTTP/1.1\r\nHost: 127.0.0.1\r\n"

# (request, status, error): what gunicorn's parser refuses, each kind with its own sentence.
MALFORMED = {
    "request line": (b"GARBAGE\r\n\r\n", 400, "Malformed request line."),
    "method": (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Invalid request method."),
    "version": (b"GET / HTTP/7.1\r\nHost: x\r\n\r\n", 400, "Unsupported HTTP version."),
    "header name": (GET + b"Bad Header: y\r\n\r\n", 400, "Invalid header field name."),
    "header value": (GET + b"X-A: a\x00b\r\n\r\n", 400, "Invalid header field."),
    "folding": (GET + b"X-A: a\r\n  b\r\n\r\n", 400, "Obsolete line folding in a header field."),
    "content-length": (POST + b"Content-Length: 1x\r\n\r\n", 400, CL_INVALID),
    "two lengths": (POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, CL_INVALID),
    # RFC 9112 3.2: an HTTP/1.1 request without a Host field, or any with two, is a 400.
    "no host": (b"GET /status_check HTTP/1.1\r\n\r\n", 400, HOST_INVALID),
    "no host, POST": (
        b"POST /liveness HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        400,
        HOST_INVALID,
    ),
    "two hosts": (GET + b"Host: 127.0.0.1\r\n\r\n", 400, HOST_INVALID),
    "two hosts, HTTP/1.0": (
        GET.replace(b"1.1", b"1.0") + b"Host: 127.0.0.1\r\n\r\n",
        400,
        HOST_INVALID,
    ),
    "chunk size": (POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, CHUNKS_INVALID),
    "chunk end": (POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabXX", 400, CHUNKS_INVALID),
    "field size": (GET + b"X-A: " + b"a" * 9000 + b"\r\n\r\n", 431, TOO_LARGE),
    "field count": (
        GET + b"".join(b"X-%d: a\r\n" % i for i in range(120)) + b"\r\n",
        431,
        TOO_LARGE,
    ),
    "line length": (
        b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n",
        414,
        "Request line is too long.",
    ),
    # RFC 9112 6.3: a request whose codings do not end with chunked has no length: 400.
    "gzip alone": (POST + b"Transfer-Encoding: gzip\r\n\r\n", 400, TE_INVALID),
    "chunked twice": (POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400, TE_INVALID),
    "chunked, HTTP/1.0": (
        POST.replace(b"1.1", b"1.0") + b"Transfer-Encoding: chunked\r\n\r\n",
        400,
        TE_INVALID,
    ),
}
# RFC 9112 6.1: a transfer coding the server does not decode is answered 501, the body unread
# (only the head is sent here: an answer at all means nothing waited for the body).
UNDECODED = {
    "gzip, chunked": b"Transfer-Encoding: gzip, chunked\r\n",
    "deflate, chunked": b"Transfer-Encoding: deflate, chunked\r\n",
    "compress, chunked": b"Transfer-Encoding: compress, chunked\r\n",
    "identity, chunked": b"Transfer-Encoding: identity, chunked\r\n",
    "GZIP,chunked": b"Transfer-Encoding: GZIP,chunked\r\n",
    "two fields": b"Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n",
    "expects 100-continue": b"Transfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n",
    "unknown coding": b"Transfer-Encoding: foo, chunked\r\n",  # gunicorn's own 501
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    with gunicorn(tmp_path_factory.mktemp("malformed"), 1) as running:
        yield running


def ask(server: Gunicorn, request: bytes) -> tuple[int, dict[str, str], object]:
    sock = connect(server.port, timeout=30)
    sock.sendall(request)
    status, headers, body = read_answer(sock)
    sock.close()
    return status, headers, json.loads(body)


def logged_with_id(log: Path, request_id: str) -> dict[str, object]:
    """gunicorn's own record of the refusal, stamped with the answer's id."""
    found: list[dict[str, object]] = []

    def written() -> bool:
        for line in log.read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("request_id") == request_id:
                found.append(record)
                return True
        return False

    until(written, timeout=30, every=0.05)
    return found[0]


def assert_refused_as_json(headers: dict[str, str]) -> None:
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert REQUEST_ID.fullmatch(headers["x-request-id"]), headers


@pytest.mark.parametrize("case", MALFORMED)
def test_a_request_gunicorn_cannot_parse_is_answered_in_json(server: Gunicorn, case: str) -> None:
    request, status, error = MALFORMED[case]
    answer = ask(server, request)
    assert (answer[0], answer[2]) == (status, {"error": error})
    assert_refused_as_json(answer[1])
    record = logged_with_id(server.log, answer[1]["x-request-id"])
    assert (record["name"], record["levelname"]) == ("gunicorn.error", "WARNING")
    # The fixed sentence and the exception's class: never the bytes refused.
    logged = rf"Invalid request from ip=127\.0\.0\.1: {re.escape(error)} \(\w+\)"
    assert re.fullmatch(logged, str(record["message"])), record


@pytest.mark.parametrize("case", UNDECODED)
def test_a_transfer_coding_other_than_chunked_is_refused_unread(
    server: Gunicorn, case: str
) -> None:
    status, headers, body = ask(server, POST + UNDECODED[case] + b"\r\n")
    assert (status, body) == (501, {"error": TE_REFUSED})
    assert_refused_as_json(headers)  # and no "100 Continue" came first (read_answer's status)
    record = logged_with_id(server.log, headers["x-request-id"])
    expected = f"Invalid request from ip=127.0.0.1: {TE_REFUSED} (UnsupportedTransferCoding)"
    assert record["message"] == expected  # never the coding the client named


@pytest.mark.parametrize("coding", [b"chunked", b"Chunked"])
def test_a_plain_chunked_body_still_reaches_the_view(server: Gunicorn, coding: bytes) -> None:
    body = b'{"hash_id": "unknown"}'
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    request = POST + b"Transfer-Encoding: " + coding + b"\r\n\r\n" + chunks
    assert ask(server, request)[::2] == (401, {"message": "Invalid credentials"})


def test_a_request_naming_its_host_once_is_served(server: Gunicorn) -> None:
    """HTTP/1.0 may leave Host out; a request with one Host field is served as before."""
    body = b'{"hash_id": "unknown"}'
    length = b"Content-Length: %d\r\n\r\n" % len(body)
    old = b"POST /liveness HTTP/1.0\r\n" + length + body
    assert ask(server, old)[::2] == (401, {"message": "Invalid credentials"})
    assert ask(server, POST + length + body)[::2] == (401, {"message": "Invalid credentials"})


def test_the_workers_answers_echo_a_sane_request_id(server: Gunicorn) -> None:
    """As Django's answers do: a client's own X-Request-ID is the id of the worker's answer
    once the head is read (a 501, an admin body over its limit), an insane one is replaced."""
    own = b"X-Request-ID: client-id-42\r\n"
    refused = ask(server, POST + own + b"Transfer-Encoding: gzip, chunked\r\n\r\n")
    head = b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999\r\n"
    too_large = ask(server, head + own + b"\r\n")
    insane = ask(server, head + b"X-Request-ID: two words\r\n\r\n")
    assert [answer[0] for answer in (refused, too_large, insane)] == [501, 413, 413]
    assert refused[1]["x-request-id"] == too_large[1]["x-request-id"] == "client-id-42"
    assert_refused_as_json(insane[1])


def test_a_head_the_parser_refuses_gets_a_new_request_id(server: Gunicorn) -> None:
    """docs/integrator/api.md: the client's id is echoed only once the head is parsed (the
    501, a malformed chunked body); an error in a header field gets a new one."""
    own = b"X-Request-ID: client-id-42\r\n"
    parsed = [
        POST + own + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        POST + own + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]
    refused_in_head = [
        POST + own + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        POST + own + b"Transfer-Encoding: gzip\r\n\r\n",
        POST + own + b"Expect: foo\r\nContent-Length: 2\r\n\r\n{}",
        POST + own + b"X-A: a\r\n  b\r\nContent-Length: 2\r\n\r\n{}",
    ]
    assert [ask(server, r)[1]["x-request-id"] for r in parsed] == ["client-id-42"] * 2
    for request in refused_in_head:
        assert REQUEST_ID.match(ask(server, request)[1]["x-request-id"]), request


def test_the_workers_own_refusals_carry_a_request_id(server: Gunicorn) -> None:
    """An admin upload declared over its limit, refused by the worker before Django."""
    head = b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999\r\n\r\n"
    status, headers, _ = ask(server, head)
    assert status == 413
    assert_refused_as_json(headers)
