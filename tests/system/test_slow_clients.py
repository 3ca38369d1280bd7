"""Slow and hostile clients against a real gunicorn started like `make serve`: they hold only
their own connections, never a worker, are dropped once their head or body is late, and one
client (one source address) cannot take the connections every other client needs."""

import http.client
import json
import select
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import pytest
import requests

from bench.images import seed_body, selfie_jpeg
from bench.slowloris import (
    ATTACKS,
    HEAD,
    answers_so_far,
    held_connections,
    slow_clients,
    timed_post,
)
from facia_site.worker import (
    BODY_TIMEOUT_S,
    EVICTIONS_LOGGED_EVERY_S,
    LARGE_BODY_BYTES,
    REFUSALS_LINGERING,
    REFUSING_AT_ONCE,
)
from tests.servers.clients import admin_session, create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.processes import until
from tests.servers.raw_http import (
    all_accepted,
    all_read,
    connect,
    oversized_form_post,
    read_answer,
    read_response,
    received,
    request_head,
    server_sides,
    status_of_answer,
)

pytestmark = pytest.mark.system

WORKERS = 2
HEAD_TIMEOUT_S = 5  # gunicorn.conf.py's keepalive
# What a busy machine may add to a timeout or a check here (measured: timeouts fire under
# 0.01 s late and checks take under 0.2 s beside two busy loops at load 10). A connection held
# by a sync worker or never dropped takes the worker timeout (60 s) or the socket's (30 s or
# more): far above these bounds.
LATE_S = 10
# 3.9 MB, served by WhiteNoise: more than the kernel buffers for a client that does not read.
BIG_STATIC = "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js.map"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    with gunicorn(tmp_path_factory.mktemp("slow"), WORKERS) as running:
        yield running


def seconds_until_closed(sock: socket.socket) -> float:
    """How long the server took to close ``sock`` (it must send nothing first)."""
    start = time.monotonic()
    assert sock.recv(1024) == b""
    return time.monotonic() - start


def test_requests_complete_while_20_slow_clients_are_connected(server: Gunicorn) -> None:
    body = selfie_body(create_tenant(server.env, "busy"))
    with slow_clients("127.0.0.1", server.port, count=20, every_s=2) as slow:
        until(lambda: all_accepted(server.port, slow), timeout=60, every=0.02)
        for i in range(5):
            start = time.monotonic()
            outcome = post(server.base, body, f"beside-slow-{i}")
            # Sync workers: ~60 s (until the worker timeout killed them); here ~30 ms.
            assert (outcome.status, time.monotonic() - start < LATE_S) == (201, True)


def test_a_trickled_head_is_dropped_after_the_head_timeout(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=30)
    for byte in HEAD[:4]:
        sock.send(bytes([byte]))
        time.sleep(1)
    assert seconds_until_closed(sock) < HEAD_TIMEOUT_S + LATE_S
    sock.close()


def test_a_stalled_body_is_dropped_after_the_body_timeout(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=60)
    sock.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"hash_id": ')
    assert seconds_until_closed(sock) < BODY_TIMEOUT_S + LATE_S
    sock.close()


def test_an_idle_connection_is_dropped(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=30)
    assert seconds_until_closed(sock) < HEAD_TIMEOUT_S + LATE_S
    sock.close()


def test_a_client_that_does_not_read_its_response_holds_no_worker(server: Gunicorn) -> None:
    body = selfie_body(create_tenant(server.env, "reader"))
    stuck = []
    for _ in range(WORKERS * 2):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET {BIG_STATIC} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        stuck.append(sock)

    def all_stuck() -> bool:  # each accepted, its response part sent and the rest queued
        sides = server_sides(server.port)
        return all(sides.get(sock.getsockname()[1], (0, 0))[1] for sock in stuck)

    until(lambda: all_accepted(server.port, stuck) and all_stuck(), timeout=60, every=0.02)
    start = time.monotonic()
    assert post(server.base, body, "beside-unread").status == 201
    assert time.monotonic() - start < LATE_S
    for sock in stuck:
        sock.close()


def send_in_pieces(
    port: int, body: bytes, pieces: int, first_with_head: int
) -> tuple[int, dict[str, object]]:
    """``body`` after its head, the head's packet carrying its first ``first_with_head`` bytes
    (what gunicorn's parser reads ahead), the rest in ``pieces`` writes with pauses."""
    sock = connect(port)
    sock.sendall(request_head(port, len(body)) + body[:first_with_head])
    rest = body[first_with_head:]
    step = max(1, -(-len(rest) // pieces))
    for start in range(0, len(rest), step):
        time.sleep(0.05)
        sock.sendall(rest[start : start + step])
    status, answer = read_response(sock)
    sock.close()
    assert answer is not None
    return status, answer


def test_a_body_in_pieces_gets_the_answer_of_one_in_one_write(server: Gunicorn) -> None:
    """The worker reads a declared body straight off the socket (after what the parser read
    ahead with the head): every split gives the same verdict as the plain request."""
    body = selfie_body(create_tenant(server.env, "pieces"))
    whole = requests.post(f"{server.base}/liveness", data=body, timeout=60)
    assert whole.status_code == 201
    for pieces, first in ((1, 0), (7, 1), (3, 5000), (1, len(body) - 1), (1, len(body))):
        status, answer = send_in_pieces(server.port, body, pieces, first)
        assert (status, answer) == (201, whole.json()), (pieces, first)


def short_of_its_length(port: int, body: bytes, declared: int) -> tuple[int, object]:
    """The answer to ``body`` sent under ``Content-Length: declared`` (more than it holds),
    the connection then half-closed: the rest never comes."""
    sock = connect(port)
    sock.sendall(request_head(port, declared) + body)
    sock.shutdown(socket.SHUT_WR)
    answer = read_response(sock)
    sock.close()
    return answer


def test_a_body_cut_short_is_dropped_and_the_worker_keeps_serving(server: Gunicorn) -> None:
    """RFC 9112 8: an incomplete message is not processed. Cut mid-image it was answered 400
    (Malformed JSON) to a client that had given up; the next requests are served."""
    body = selfie_body(create_tenant(server.env, "short"))
    assert short_of_its_length(server.port, body[:-100], len(body)) == (0, None)
    for i in range(WORKERS * 2):
        assert post(server.base, body, f"after-short-{i}").status == 201


def test_a_whole_json_short_of_its_length_is_not_judged(server: Gunicorn) -> None:
    """A complete JSON check under a Content-Length 100 bytes longer, the client then done
    sending: closed unanswered, and the tenant's one unit is left for the next check (judged,
    it was answered 201 and the next check 429)."""
    body = selfie_body(create_tenant(server.env, "short-whole", limit=1))
    assert short_of_its_length(server.port, body, len(body) + 100) == (0, None)
    assert post(server.base, body, "after-short-whole").status == 201


@pytest.mark.parametrize(("path", "status"), [("/metrics", 405), ("/admin/login/", 413)])
def test_a_body_declared_over_the_limit_never_holds_django(
    server: Gunicorn, path: str, status: int
) -> None:
    """Django would read such a body (CSRF parsing the form) straight off the socket, with
    no deadline, while holding the worker: one connection sending a byte a second would keep a
    worker from answering anything for over 75 s. It is answered without the client sending
    another byte: by the view from an empty body (/metrics: 405; a view CSRF guards
    would answer CSRF's 403), or on an admin page, whose limit is the calibration zip's, by the
    worker (413)."""
    body = selfie_body(create_tenant(server.env, f"beside-oversized-{status}"))
    stalled = [oversized_form_post(server.port, path, 200_000_000) for _ in range(WORKERS)]
    assert [status_of_answer(sock) for sock in stalled] == [status] * WORKERS
    for sock in stalled:
        sock.close()
    for i in range(WORKERS * 2):
        assert post(server.base, body, f"after-oversized-{status}-{i}").status == 201
    assert requests.get(f"{server.base}{path}", timeout=60).status_code in (200, 403)


def urllib_status(url: str, body: bytes) -> tuple[int, bytes]:
    """The status and body urllib.request reads for a POST of ``body``: it sends the whole
    body before it reads a byte of the answer."""
    return urllib_answer(urllib.request.Request(url, body, {"Content-Type": "application/json"}))


def urllib_answer(request: urllib.request.Request) -> tuple[int, bytes]:
    """The status and body of ``request``'s answer, a refusal's too."""
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, refused.read()


@pytest.mark.parametrize("path", ["/liveness", "/admin/accounts/tenant/"])
def test_a_client_that_sends_its_whole_body_first_reads_the_413(
    server: Gunicorn, path: str
) -> None:
    """The 413 is answered before the body is read; the worker then reads and drops what the
    client still sends (for at most LINGER_S) before it closes. Closed at once, the client's
    unread bytes made the kernel reset the connection, and a client that sends its whole
    body before reading (urllib.request, 6 tries of 6) got the reset, not the answer."""
    body = b"x" * (17 * 1024 * 1024)
    for _ in range(3):
        status, answer = urllib_status(f"{server.base}{path}", body)
        assert status == 413
        assert b"Request body is too large" in answer


def urllib_chunked_status(url: str, body: bytes) -> tuple[int, bytes]:
    """As urllib_status, the body sent chunked (in 64 KiB chunks)."""
    chunks = (body[at : at + 64 * 1024] for at in range(0, len(body), 64 * 1024))
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    return urllib_answer(urllib.request.Request(url, chunks, headers, method="POST"))


def test_a_client_that_sends_its_whole_chunked_body_first_reads_the_413(
    server: Gunicorn,
) -> None:
    """A chunked body has no length to refuse it by: the worker reads one byte past the limit
    for the view's 413, then drops what the client still sends, as for a body refused unread.
    Closed at once, urllib.request posting 20 MiB chunked got a reset, 4 tries of 4."""
    body = b"x" * (20 * 1024 * 1024)
    for _ in range(3):
        status, answer = urllib_chunked_status(f"{server.base}/liveness", body)
        assert status == 413
        assert json.loads(answer) == {"error": "Request body is too large (limit 16777216 bytes)."}


def expecting_continue(port: int, path: str, declared: int, token: str = "") -> bytes:
    """What the server answers a POST of ``path`` declaring ``declared`` bytes that asks for
    100 Continue first (and so sends none of them), read until the server closes."""
    bearer = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n{bearer}"
        "Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    sock = connect(port)
    sock.sendall(head.encode())
    try:
        return received(sock)
    finally:
        sock.close()


def test_a_body_declared_over_the_limit_is_refused_without_100_continue(
    server: Gunicorn,
) -> None:
    """RFC 9110 10.1.1: a server that refuses the body answers the final status in place of
    100 Continue. gunicorn sent the 100 before the view's 413, inviting 20 MiB it would drop."""
    answer = expecting_continue(server.port, "/liveness", 20 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:40]


def opened_session(server: Gunicorn, name: str) -> tuple[str, str]:
    """A new capture session's id and token, from a new tenant's hash_id."""
    secret = create_tenant(server.env, name)
    opened = requests.post(f"{server.base}/sessions", json={"hash_id": secret}, timeout=60)
    assert opened.status_code == 201, opened.text
    return opened.json()["session_id"], opened.json()["token"]


@pytest.mark.parametrize("call", ["quality", "challenge"])
@pytest.mark.parametrize("caller", ["token", "garbage token", "unknown session", "no token"])
def test_a_session_call_over_its_own_limit_is_refused_before_a_byte_is_read(
    server: Gunicorn, call: str, caller: str
) -> None:
    """The quality and challenge calls read at most SESSION_QUALITY_MAX_BYTES (1 MiB): the
    worker refuses a larger declared body unread, whoever sends it. Bounded by the view only,
    the worker sent 100 Continue and read up to 16 MiB (from a garbage token too) before
    the 413."""
    session_id, token = opened_session(server, f"over-own-limit-{call}-{caller}")
    token = {"garbage token": "x" * 43, "no token": ""}.get(caller, token)
    if caller == "unknown session":
        session_id = str(uuid.uuid4()).upper()
    path = f"/sessions/{session_id}/{call}"
    answer = expecting_continue(server.port, path, 2 * 1024 * 1024, token)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:40]
    _, _, body = answer.partition(b"\r\n\r\n")
    assert json.loads(body) == {"error": "Request body is too large (limit 1048576 bytes)."}


def test_a_chunked_session_call_is_answered_once_past_its_own_limit(server: Gunicorn) -> None:
    """A chunked quality body is read one byte past its 1 MiB, never to 16 MiB: a client that
    has sent 2 MiB and goes on sending is answered 413 then. Bounded by the view only, the
    worker waited for up to 16 MiB (here: its body deadline, then closed unanswered)."""
    session_id, token = opened_session(server, "chunked-own-limit")
    head = (
        f"POST /sessions/{session_id}/quality HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (1024 * 1024, b" " * (1024 * 1024))  # JSON whitespace
    sock = connect(server.port)
    sock.sendall(head.encode() + chunk + chunk)  # no last chunk: the body goes on
    status, answer = read_response(sock)
    sock.close()
    assert status == 413
    assert answer == {"error": "Request body is too large (limit 1048576 bytes)."}


def session_cookie(server: Gunicorn, *perms: str) -> str:
    return str(admin_session(server.base, server.env, *perms).cookies["sessionid"])


def test_an_admin_upload_is_read_by_the_worker_within_its_deadline(server: Gunicorn) -> None:
    """An admin form within the calibration zip's limit but over /liveness's, from a user who
    may calibrate, is buffered by the worker like any body, with a deadline per 16 MB: a
    stalled one is dropped then, never having held Django (before, Django read it with no
    deadline)."""
    body = selfie_body(create_tenant(server.env, "beside-admin-upload"))
    declared = 50_000_000
    session = session_cookie(
        server, "accounts.view_tenant", "accounts.change_tenant", "calibration.view_calibration"
    )
    path = "/admin/accounts/tenant/"
    stalled = [oversized_form_post(server.port, path, declared, session) for _ in range(WORKERS)]
    for i in range(WORKERS * 2):
        assert post(server.base, body, f"beside-admin-upload-{i}").status == 201
    deadline = BODY_TIMEOUT_S * declared / (16 * 1024 * 1024)
    for sock in stalled:
        assert seconds_until_closed(sock) < deadline + LATE_S
        sock.close()


@pytest.mark.parametrize("who", ["anonymous", "viewer", "forged session"])
def test_an_admin_body_over_the_api_limit_is_refused_unless_its_user_may_calibrate(
    server: Gunicorn, who: str
) -> None:
    """Only a user who may calibrate gets the zip's limit: anyone else's admin body over
    /liveness's limit is answered 413 at once, never read (before, anyone's was buffered up
    to 65 MiB, two at a time per worker)."""
    session = {
        "anonymous": "",
        "viewer": session_cookie(server, "accounts.view_tenant"),
        "forged session": "x" * 32,
    }[who]
    stalled = oversized_form_post(server.port, "/admin/accounts/tenant/", 50_000_000, session)
    assert status_of_answer(stalled) == 413
    stalled.close()


def test_no_worker_keeps_a_child_process_after_boot(server: Gunicorn) -> None:
    """`import openvino` sent a telemetry event from a forked process nobody reaped: each
    worker kept a zombie child from boot (ml/__init__.py keeps that module out)."""
    for worker in server.workers():
        assert [
            child for task in Path(f"/proc/{worker}/task").iterdir() for child in _children(task)
        ] == []


def _children(task: Path) -> list[str]:
    try:
        return (task / "children").read_text().split()
    except FileNotFoundError:
        return []  # a thread that ended meanwhile


# --- One client against everyone else: a worker with few connections, so that a few attack
# connections take them all (as 250 did of 2 x 100). The attackers connect from other loopback
# addresses than the normal client (127.0.0.1): other clients, as far as the server can tell.
CONNECTIONS = 8  # per worker (GUNICORN_WORKER_CONNECTIONS)
PER_CLIENT = 3  # CONNECTIONS_PER_CLIENT
# The issue asks for 1 s; a worker that waited out the slow clients would take at least the
# head timeout (5 s), most often the body timeout (10 s) or more. A loaded CI machine gets the
# margin between the two.
PROMPTLY_S = 3
OVER_CAP = "HTTP/1.1 429 Too Many Requests"


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("crowded")
    limits = {
        "GUNICORN_WORKER_CONNECTIONS": str(CONNECTIONS),
        "CONNECTIONS_PER_CLIENT": str(PER_CLIENT),
    }
    with gunicorn(work, 1, **limits) as running:
        yield running


@pytest.fixture
def quiet(crowded: Gunicorn) -> Iterator[Gunicorn]:
    """The crowded server, once the connections of an earlier test are gone."""
    until(lambda: not _connections_to(crowded.port), timeout=BODY_TIMEOUT_S * 3)
    yield crowded


# The server's end still open: established, or closed by the client and not yet by the
# server (CLOSE_WAIT), whose greenlet may still hold a large-body slot.
HELD_BY_SERVER = ("01", "08")


def _connections_to(port: int) -> list[str]:
    """Connections to ``port`` on loopback whose server end the server still holds."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [
        r for r in rows if r.split()[3] in HELD_BY_SERVER and int(r.split()[1][-4:], 16) == port
    ]


def timed_liveness(server: Gunicorn, body: bytes, chunked: bool = False) -> tuple[int, float]:
    return timed_post(f"{server.base}/liveness", body, timeout_s=60, chunked=chunked)


def attack(
    server: Gunicorn, kind: str, count: int, *sources: str
) -> AbstractContextManager[list[socket.socket]]:
    return held_connections("127.0.0.1", server.port, count, ATTACKS[kind], list(sources))


def served_past_one_client(server: Gunicorn, kind: str, count: int, source: str) -> int:
    """A normal client's /liveness, answered 201 promptly while one client at ``source``
    holds ``count`` connections of ``kind``; how many of those got the over-cap answer."""
    body = selfie_body(create_tenant(server.env, kind))
    with attack(server, kind, count, source) as socks:
        status, seconds = timed_liveness(server, body)
        refused = answers_so_far(socks).get(OVER_CAP, 0)
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds
    return refused


def test_one_client_with_stalled_large_bodies_leaves_others_served(quiet: Gunicorn) -> None:
    """Heads declaring a 16 MB body, one byte of it each: every one waited for one of the 2
    large-body slots without a deadline, holding a connection; 250 of them held all 200 and a
    normal request had no answer in 40 s. Now the client gets PER_CLIENT connections; the
    others are refused at once."""
    refused = served_past_one_client(quiet, "large-heads", 2 * CONNECTIONS, "127.0.1.1")
    assert refused == 2 * CONNECTIONS - PER_CLIENT


def test_one_client_with_idle_connections_leaves_others_served(quiet: Gunicorn) -> None:
    """1,000 idle connections made a new client wait 24.5 s (each batch of connections held
    until the 5 s head timeout)."""
    refused = served_past_one_client(quiet, "idle", 3 * CONNECTIONS, "127.0.2.1")
    assert refused == 3 * CONNECTIONS - PER_CLIENT


def test_idle_connections_of_many_clients_make_room_for_a_new_one(quiet: Gunicorn) -> None:
    """Every connection taken by idle clients, each within its cap: the one idle longest is
    closed for a newcomer, which is served at once."""
    body = selfie_body(create_tenant(quiet.env, "many-idle"))
    sources = [f"127.0.3.{i}" for i in range(1, 6)]
    with attack(quiet, "idle", PER_CLIENT * len(sources), *sources) as socks:
        status, seconds = timed_liveness(quiet, body)
        got = answers_so_far(socks)
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds
    assert OVER_CAP not in got
    # The newcomers past CONNECTIONS (the normal client too) each closed an idle one.
    assert got.get("closed", 0) >= PER_CLIENT * len(sources) + 1 - CONNECTIONS


def test_connections_lingering_after_their_413_make_room_for_a_new_one(quiet: Gunicorn) -> None:
    """Every connection taken by clients answered 413 that keep their connections open: each
    still drains for up to LINGER_S (5 s), but the one lingering longest is closed for a
    newcomer, which is served at once (not answered 503 as by a full worker)."""
    body = selfie_body(create_tenant(quiet.env, "lingering"))
    sources = [f"127.0.5.{i}" for i in range(1, 4)]
    oversized = request_head(quiet.port, 200_000_000) + b"{"
    with held_connections("127.0.0.1", quiet.port, CONNECTIONS, oversized, sources) as socks:
        # Each answer ends with the server's half-close: read to its end, it is lingering.
        assert [status_of_answer(sock) for sock in socks] == [413] * CONNECTIONS
        status, seconds = timed_liveness(quiet, body)
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds


def test_connections_closed_to_make_room_do_not_linger(quiet: Gunicorn) -> None:
    """Connections waiting for a large-body slot, each closed for a newcomer: answered 503 and
    closed at once. Lingering after that 503 (uncounted), 22 of them would hold every
    greenlet of the worker's pool, and a newcomer wait for them to end."""
    body = selfie_body(create_tenant(quiet.env, "evicted"))
    sources = [f"127.0.6.{i}" for i in range(1, 11)]
    with attack(quiet, "large-heads", PER_CLIENT * len(sources), *sources):
        status, seconds = timed_liveness(quiet, body)
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds


@contextmanager
def unread_responses(port: int, count: int, sources: list[str]) -> Iterator[list[socket.socket]]:
    """``count`` connections (from ``sources`` in turn) that each ask twice (pipelined) for a
    3.9 MB file and do not read it, held while inside, once the worker holds each with its
    response part sent: nothing a newcomer may close (the worker only waits, up to
    RESPONSE_TIMEOUT_S, for the client to read).

    Twice: the kernel's send buffer grows up to tcp_wmem's 4 MB, so one file could fit whole;
    its connection then waited for a next head, idle, and was closed after the keepalive while
    the others were still being set up on a busy machine (a CI run: a holder's server side
    orphaned, its bytes queued, the test waited 60 s for it to be accepted)."""
    request = f"GET {BIG_STATIC} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    socks = []
    try:
        for i in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
            sock.bind((sources[i % len(sources)], 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(request * 2)
            socks.append(sock)

        def all_stuck() -> bool:  # each held by the worker (an inode), its bytes queued
            sides = server_sides(port)
            held = [sides.get(sock.getsockname()[1], (0, 0)) for sock in socks]
            return all(inode and queued for inode, queued in held)

        until(all_stuck, timeout=60, every=0.02)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_a_full_worker_answers_a_new_connection_at_once(quiet: Gunicorn) -> None:
    """Every connection is sending a response its client does not read (nothing to close for
    a newcomer): a new connection gets 503 at once, not a place in the listen backlog."""
    sources = [f"127.0.4.{i}" for i in range(1, 4)]
    with unread_responses(quiet.port, CONNECTIONS, sources):
        start = time.monotonic()
        status, _ = read_response(connect(quiet.port, timeout=30))
    assert (status, time.monotonic() - start < PROMPTLY_S) == (503, True)


def test_trickled_bodies_of_many_clients_make_room_for_a_new_one(quiet: Gunicorn) -> None:
    """Every connection reading a body that trickles (from several clients, each within its
    cap): the slowest is closed for a newcomer, which is served at once. A body held its
    connection until its deadline however slowly it came: 250 of them at 1 byte/s from 10
    addresses left a normal client 2 answers in 26 tries (503 or a reset)."""
    body = selfie_body(create_tenant(quiet.env, "trickled"))
    sources = [f"127.0.9.{i}" for i in range(1, 4)]
    with held_connections("127.0.0.1", quiet.port, CONNECTIONS, STALLED, sources) as socks:
        until(lambda: all_read(quiet.port, socks), timeout=60, every=0.02)
        status, seconds = timed_liveness(quiet, body)
        got = answers_so_far(socks)
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds
    assert got.get("closed", 0) >= 1, got


def test_a_large_body_takes_the_slot_of_one_too_slow_for_its_deadline(quiet: Gunicorn) -> None:
    """Both large-body slots held by bodies declaring 16 MB and sending 1 byte: a phone's
    photo waited LARGE_BODY_WAIT_S (5 s) for a slot, then got 503 (slots held by 8 such
    clients: 5 photos of 9). A body that cannot arrive by its deadline at its rate so far is
    closed for it: it would be dropped at its deadline anyway."""
    body = seed_body(selfie_jpeg(2400, 3200), create_tenant(quiet.env, "photo-beside-slow"))
    assert len(body) > LARGE_BODY_BYTES
    with attack(quiet, "large-heads", 2, "127.0.10.1", "127.0.10.2") as socks:
        until(lambda: all_read(quiet.port, socks), timeout=60, every=0.02)
        status, seconds = timed_liveness(quiet, body)
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds


# A phone's pause after the first bytes of its photo (1-2.5 s seen from phones; then 4 Mbit/s):
# the client's own pacing. Judged at once, a holder was cut 0.4-0.6 s into such a pause.
PHONE_PAUSE_S = 1.0
PHONE_FIRST_BYTES = 25_000


def _connect_from(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0))


def _answer(sock: socket.socket) -> tuple[int, str | None] | str:
    """Status and Retry-After of the answer on ``sock``, or "no answer" when the connection
    ended (closed or reset) with none."""
    try:
        status, headers, _ = read_answer(sock)
    except (OSError, IndexError):  # IndexError: nothing came before the close
        return "no answer"
    return status, headers.get("retry-after")


def _answered(sock: socket.socket) -> bool:
    """Whether something (an answer, or the end of the connection) is there to read."""
    return bool(select.select([sock], [], [], 0)[0])


def _send(sock: socket.socket, data: bytes) -> None:
    with suppress(OSError):  # a connection cut shows in its answer
        sock.sendall(data)


def test_a_large_body_paused_at_its_start_keeps_its_slot(quiet: Gunicorn) -> None:
    """Two phones' photos hold both large-body slots and pause after their first 25 KB while a
    third request waits for a slot: judged from their rate so far, they could not arrive by
    their deadline and were cut with no answer (six such phones at 4 Mbit/s: 8 of 12 cut).
    Now a body's rate is credited a second of 4 Mbit/s: each is answered, as is the third."""
    body = seed_body(selfie_jpeg(2400, 3200), create_tenant(quiet.env, "paused-phone"))
    assert len(body) > LARGE_BODY_BYTES
    head = request_head(quiet.port, len(body))
    phones = [_connect_from(quiet.port, f"127.0.12.{i}") for i in (1, 2)]
    for phone in phones:
        phone.sendall(head + body[:PHONE_FIRST_BYTES])
    until(lambda: all_read(quiet.port, phones), timeout=60, every=0.02)  # both slots held
    waiting = _connect_from(quiet.port, "127.0.12.3")
    waiting.sendall(head)
    # Its head read, or (on a machine too busy to look within LARGE_BODY_WAIT_S) answered.
    until(lambda: all_read(quiet.port, [waiting]) or _answered(waiting), timeout=60, every=0.02)
    time.sleep(PHONE_PAUSE_S)  # the phones' own pause, not a wait for the server
    for phone in phones:
        _send(phone, body[PHONE_FIRST_BYTES:])
    assert [_answer(phone) for phone in phones] == [(201, None)] * 2
    _send(waiting, body)
    assert _answer(waiting) in [(201, None), (503, "1")]


def test_connections_closed_for_others_are_logged_as_one_info_line(quiet: Gunicorn) -> None:
    """Each connection closed while its greenlet read it was logged as an ERROR with a
    traceback (gevent's shutdown raised cancel_wait_ex there: 33 in a 30 s attack); now the
    worker counts them and logs one INFO line per EVICTIONS_LOGGED_EVERY_S."""
    body = selfie_body(create_tenant(quiet.env, "logged"))
    since = len(quiet.log.read_text(errors="replace").splitlines())
    sources = [f"127.0.11.{i}" for i in range(1, 4)]
    with held_connections("127.0.0.1", quiet.port, CONNECTIONS, b"", sources) as idle:
        until(lambda: all_accepted(quiet.port, idle), timeout=60, every=0.02)
        assert timed_liveness(quiet, body)[0] == 201

    def logged() -> list[str]:
        return quiet.log.read_text(errors="replace").splitlines()[since:]

    def closing_logged() -> bool:  # the idle one closed, counted in a line of its own or not
        closing = f"in {EVICTIONS_LOGGED_EVERY_S} s to make room for others ("
        return any(closing in line and "waiting longest for its head" in line for line in logged())

    until(closing_logged, timeout=3 * EVICTIONS_LOGGED_EVERY_S)
    assert [line for line in logged() if "Socket error" in line or "cancel_wait" in line] == []


# A large body stalled after 1,000,000 of its 1,100,000 bytes: at its rate so far it would
# arrive by its deadline (10 s) until 9.1 s in, so no request waiting for its slot closes it.
ON_TIME = HEAD + b"Content-Length: 1100000\r\n\r\n{" + b" " * 999_999


def test_waiting_for_a_large_body_slot_ends_in_503(quiet: Gunicorn) -> None:
    """Two large bodies on their way to arrive in time hold both slots; a third waited for a
    slot with no deadline, then for its body: dropped after 20 s without an answer. Now it
    gets 503 + Retry-After (LARGE_BODY_WAIT_S) before the first two are even dropped."""
    with held_connections("127.0.0.1", quiet.port, 3, ON_TIME, ["127.0.6.1"]) as socks:
        readable, _, _ = select.select(socks, [], [], BODY_TIMEOUT_S - 1)
        assert len(readable) == 1
        status, payload = read_response(readable[0])
    assert (status, payload) == (503, {"error": "Service is busy, try again later."})


# --- Refused at admission while sending a request: the answer must reach the client.
REFUSED_BODY_BYTES = 2 * 1024 * 1024  # far more than the kernel buffers before it is read
TRIES = 10
STALLED = HEAD + b"Content-Length: 1000\r\n\r\n{"  # held until BODY_TIMEOUT_S


def answer_to_post(port: int, source: str, body: bytes) -> tuple[int, str | None, bytes] | str:
    """What http.client reads for a POST of ``body`` from ``source``: it sends the whole body
    before it reads the answer. Status, Retry-After and body, or the error it got instead."""
    client = http.client.HTTPConnection("127.0.0.1", port, 60, source_address=(source, 0))
    try:
        client.request("POST", "/liveness", body, {"Content-Type": "application/json"})
        reply = client.getresponse()
        return reply.status, reply.getheader("Retry-After"), reply.read()
    except OSError as error:
        return type(error).__name__
    finally:
        client.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, "Too many connections from this client."), (503, "Service is busy, try again later.")],
)
def test_a_client_refused_while_sending_its_body_reads_the_answer(
    quiet: Gunicorn, status: int, error: str
) -> None:
    """Refused at admission (over the client's cap: 429; every connection busy: 503), the
    connection was closed at once with the request unread: the kernel reset it, and a client
    that sends its whole body before reading got the reset, not the answer (http.client
    posting 2 MB: 20 tries of 20 over the cap, 7 of 8 on a full worker). Now the refusal reads
    and drops what the client still sends, as after a 413."""
    source = "127.0.7.1"
    body = b"{" + b" " * (REFUSED_BODY_BYTES - 1)
    if status == 429:  # the client's own connections take its cap
        holding = held_connections("127.0.0.1", quiet.port, PER_CLIENT, STALLED, [source])
    else:  # other clients, each within its cap, take every connection, none to be closed
        holders = [f"127.0.7.{i}" for i in range(2, 5)]
        holding = unread_responses(quiet.port, CONNECTIONS, holders)
    with holding as socks:
        until(lambda: all_accepted(quiet.port, socks), timeout=60, every=0.02)
        answers = [answer_to_post(quiet.port, source, body) for _ in range(TRIES)]
    assert answers == [(status, "1", json.dumps({"error": error}).encode())] * TRIES


def status_line(sock: socket.socket) -> str:
    """The first line the server sent on ``sock``; "" when none came within its timeout."""
    with suppress(OSError):
        return sock.recv(64).split(b"\r\n")[0].decode()
    return ""


def test_refused_clients_holding_their_connections_leave_the_worker_answering(
    quiet: Gunicorn,
) -> None:
    """At most REFUSALS_LINGERING refused connections drain at once (each up to LINGER_S);
    past that a refusal closes at once. Had every refusal lingered, 21 refused clients holding
    their connections took the worker's whole pool (8 kept + 16 to refuse), and every later
    connection, a normal client's too, waited in the listen backlog until they ended."""
    body = selfie_body(create_tenant(quiet.env, "refused-flood"))
    count = PER_CLIENT + 3 * REFUSING_AT_ONCE
    assert count - PER_CLIENT > CONNECTIONS + REFUSING_AT_ONCE - REFUSALS_LINGERING
    with held_connections("127.0.0.1", quiet.port, count, STALLED, ["127.0.8.1"]) as socks:
        start = time.monotonic()
        refused = [status_line(sock) for sock in socks[PER_CLIENT:]]
        all_refused_s = time.monotonic() - start
        status, seconds = timed_liveness(quiet, body)
    assert refused == [OVER_CAP] * (count - PER_CLIENT)
    assert all_refused_s < PROMPTLY_S, all_refused_s
    assert (status, seconds < PROMPTLY_S) == (201, True), seconds
