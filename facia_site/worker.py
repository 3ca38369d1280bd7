"""The gunicorn worker: gevent reads whole requests, Django serves them one at a time.

A sync worker reads the request itself, so a client trickling its head holds the worker (2
such clients per 2 workers stop the service for ~60 s at a time). Here every connection's
head and body are read by its own greenlet, within deadlines, and only a complete request
enters Django, one per worker at a time, as with a sync worker: Django's database
connection, the engine and the quota transaction see exactly what a sync worker gives
them. Threading is not patched, so that connection stays one per worker process
(CONN_MAX_AGE keeps its meaning).

Every answer the worker gives itself (a refusal before Django, gunicorn's for a request it
cannot parse) is JSON with an ``X-Request-ID``, as Django's are (docs, API, Malformed requests).
"""

import ctypes
import gc
import io
import json
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import unquote

import gevent
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections
from gevent import monkey
from gevent import socket as gsocket
from gevent.lock import BoundedSemaphore, Semaphore
from gunicorn.http import errors as parse
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.workers.ggevent import GeventWorker

from telemetry.logs import current_request_id, redact_tokens

# A request whose head (keepalive setting) or body (this) has not fully arrived in time is
# dropped: at LAN speed a 16 MB body takes well under a second. Every body gets at least this
# long, so a client needs size x 8 / 10 s of uplink: 0.8 Mbit/s for a 1 MB body, 1.6 for a 2 MB
# one, 2.8 for the 3.5 MB of a 2.6 MB photo as base64; a slower one needs a buffering proxy
# (docs, Deployment).
BODY_TIMEOUT_S = 10
# The admin's calibration zip (UPLOAD_MAX_BYTES) is the one body allowed over
# LIVENESS_MAX_BODY_BYTES: with its form around it, and this long per LIVENESS_MAX_BODY_BYTES.
UPLOAD_FORM_BYTES = 1 << 20
# Bodies over 1 MB are buffered at most this many at a time per worker (each costs its size a
# few times over until answered); smaller ones are bounded by worker_connections. A chunked
# body is read like a small one until it grows past 1 MB (before, every chunked body waited
# for a slot: a 34 KB one 19.5 s behind 6 stalled ones).
LARGE_BODY_BYTES = 1 << 20
LARGE_BODIES_AT_ONCE = 2
# A large body holding its slot is judged too slow for its deadline (and closed for a request
# waiting for the slot) when, at its rate so far with this credited at its start (what 4
# Mbit/s sends in a second), less than ARRIVING_SHARE of it would arrive by then. At its plain
# rate, a phone that paused 1-2.5 s after its first 25 KB and then sent 4 Mbit/s (a 2.04 MB
# body in 5-6.6 s, in time) was cut 0.4 s into its pause with no answer (8 of 12 with six
# such phones); credited, it projects 1.67 MB after 2.5 s of pause and is never cut below 3.5
# s of it. A fixed credit judges a larger body sooner: a 16 MB one at 2 kB/s is cut 0.6 s in
# (a 2 MB one at that rate 3.5 s in). Judged only a third into its time instead, both slots
# were held 3.3 s at a time and photos waited up to 3.5 s (1 of 11 got 503).
SLOT_CREDIT_BYTES = 512 * 1024
ARRIVING_SHARE = 0.5
# Every wait has a deadline, then 503 + Retry-After: for a large-body slot (without one, 250
# stalled 16 MB heads held every connection and a normal request had no answer for 40 s) and
# for Django (a request ahead takes ~40 ms; 30 s of queue is never normal).
LARGE_BODY_WAIT_S = 5
DJANGO_WAIT_S = 30
# A response the client has not taken in this long is dropped (it is sent after the worker
# has moved on, so only the connection waits).
RESPONSE_TIMEOUT_S = 30
# Connections gevent may accept beyond worker_connections, only to refuse them at once: a
# full worker then still answers, rather than leaving new clients in the listen backlog.
REFUSING_AT_ONCE = 16
# Refused connections that linger after their answer at once (as answers sent with the body
# unread do, below): closed at once, a refused client still sending its request got a reset
# instead of the 429 or 503 (http.client posting 2 MB: 20 of 20 over the per-client cap, 7 of
# 8 on a full worker). Half the refusing room, so that refused clients holding their
# connections open still leave 8 greenlets to refuse others at once; past it, a refusal is
# closed at once, as before.
REFUSALS_LINGERING = REFUSING_AT_ONCE // 2
# A refused request is not parsed: what a lingering refusal reads is bounded by the most the
# worker reads of any request, a head (gunicorn's limits: under 1 MiB) and the largest body.
HEAD_BYTES = 1 << 20
# How often a connection waiting for a large-body slot sees that it was closed for another.
EVICTION_CHECK_S = 0.1
# After an answer sent with the body unread (413, 503), what the client still sends is read
# and dropped this long before the connection closes: closed at once, the client's unread
# bytes made the kernel reset it, and a client that sends its whole body before reading
# (urllib.request, 6 tries of 6 with 17 MB) got the reset instead of the answer. A 16 MiB
# body takes this long at about 30 Mbit/s; a lingering connection may be closed to make room
# for a new one, as an idle one may.
LINGER_S = 5
LINGER_CHUNK = 64 * 1024
# When every connection is taken, the body being read slowest is closed for a newcomer: a
# body had its deadline however slowly it came, so 250 bodies trickled at 1 byte/s from 10
# addresses (each within its cap) held every connection of 2 workers, and a normal client got
# 503 or a reset for 23 of 26 requests. Slowest, not a fixed floor: a phone on a slow uplink
# (1 Mbit/s: 125 KB/s; enough for a body up to 1.25 MB, BODY_TIMEOUT_S) is outrun only by
# clients that send faster, and 200 such connections
# cost an attacker 200 Mbit/s where the trickle cost 250 B/s. Each body's rate counts this
# much as sent at its start (what 1 Mbit/s sends in half a second, its first round trips):
# a body just begun is not the slowest for having sent nothing yet, and among bodies equally
# slow the oldest is closed. Judged only after a first second, new connections of a trickle
# that were closed and came back held every connection in turn (a normal client still got 2
# resets in 23 tries).
BODY_CREDIT_BYTES = 64 * 1024
# Connections closed to make room are logged as one INFO line per this many seconds (a count
# per reason): one line each, that trickle made a worker log 60 a second.
EVICTIONS_LOGGED_EVERY_S = 10
# A chunked body is read in pieces of this size, so that its progress is known between them.
CHUNKED_STEP = 16 * 1024
# Routes whose view reads less than LIVENESS_MAX_BODY_BYTES, by the setting that bounds it
# (capture.views' calls; the decoded path's end, so any prefix and a session id in any form
# match): the worker reads no more, and refuses a larger declared body unread. Bounded only
# by the view, an unauthenticated client makes the worker read 16 MiB on the 1 MiB quality
# route before its 413 (or its 401 for a garbage token).
ROUTE_LIMITS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/sessions/[^/]+/(?:quality|challenge)\Z"), "SESSION_QUALITY_MAX_BYTES"),
)


def json_answer(status: int, error: str, retry: bool = False, request_id: str = "") -> bytes:
    """A whole JSON answer, as Django's: sent without reading the request (or the rest of
    it), the connection then closes. ``request_id``: a new one when empty."""
    body = json.dumps({"error": error}).encode()
    retry_after = "Retry-After: 1\r\n" if retry else ""
    return _answer(status, "application/json", body, retry_after, request_id)


# The livenessProbe's path, answered here without the Django slot: through it, a probe waited
# behind every queued request (2-6.7 s under 24 clients against the probe's 5 s timeout).
PROCESS_PROBE = "/healthz"
# The readinessProbe's path. Through the slot it waited as long (against a 3 s timeout): a
# busy, healthy pod left the Service and its traffic went to the others. While the slot is
# busy the worker answers it from its last database verdict (liveness.runtime), probed again
# before a request once it is CACHE_S old (refresh_readiness); with the slot free, Django does.
READINESS_PROBE = "/status_check"
# A verdict older than this is not given (one request has held the slot since: a stuck worker,
# a hung database): the probe then waits for Django as any request does, and the probe's 3 s
# timeout finds the worker unready as before. Two readiness periods of 5 s.
VERDICT_MAX_AGE_S = 10.0


def process_health(method: str, request_id: str) -> bytes:
    """liveness.views.healthz's answer, given by the worker: the engine warm (post_fork
    warms it before the worker serves), no database."""
    from liveness.runtime import PROCESS_LIVE, process_problem

    return _probe_answer(method, process_problem(), PROCESS_LIVE, request_id)


def readiness(method: str, request_id: str) -> bytes | None:
    """liveness.views.status_check's answer from the worker's last verdict on the database;
    None when that is over VERDICT_MAX_AGE_S old."""
    from liveness.runtime import SERVICE_LIVE, last_verdict, process_problem

    reason = process_problem()
    if reason is None:
        verdict = last_verdict()
        if verdict.age() > VERDICT_MAX_AGE_S:
            return None
        reason = verdict.reason
    return _probe_answer(method, reason, SERVICE_LIVE, request_id)


def refresh_readiness() -> None:
    """Probe the database before a request once the verdict is CACHE_S old, under the slot
    (Django's connection is the worker's one), so that it stays fresh while requests queue:
    one probe (a read, an insert rolled back) per CACHE_S per busy worker. Not while the
    worker has not yet found its migrations applied: asking them costs 15-18 probes, never a
    request's to pay; its verdict then ages past VERDICT_MAX_AGE_S, and /status_check asks
    them through Django. A probe that waited out DATABASE_TIMEOUT_S has the request answer
    503 at once (liveness.runtime.probe_before_request)."""
    from liveness import runtime

    runtime.probe_before_request()


def _probe_answer(method: str, reason: str | None, live: str, request_id: str) -> bytes:
    """A probe's text/plain answer: 200 ``live``, or 503 ``reason`` with Retry-After."""
    body = (reason or live).encode()
    status = 200 if reason is None else 503
    retry_after = "" if reason is None else "Retry-After: 1\r\n"
    answer = _answer(status, "text/plain", body, retry_after, request_id)
    return answer.removesuffix(body) if method == "HEAD" else answer


def _answer(status: int, kind: str, body: bytes, extra: str, request_id: str) -> bytes:
    from telemetry.middleware import HEADER, new_request_id  # after Django's setup (metrics)

    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}"
        f"{HEADER}: {request_id or new_request_id()}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def too_large(limit: int, request_id: str) -> bytes:
    """An admin page's body declared over ``limit``, refused unread, as /liveness's 413."""
    from liveness.answers import ANSWERS  # Django is set up before any request is served

    text = ANSWERS["body_too_large"].text.format(limit=limit)
    return json_answer(413, text, request_id=request_id)


def unavailable(request_id: str) -> bytes:
    """The 503 of a database that did not answer, as Django's pages give it (the worker asks
    it whether an admin body may be read)."""
    from liveness.answers import ANSWERS

    return json_answer(503, ANSWERS["not_ready"].text, retry=True, request_id=request_id)


@dataclass(frozen=True)
class Refusal:
    """A connection refused before its request is read (each answer gets its own id)."""

    status: int
    error: str
    reason: str  # facia_worker_refusals_total's label

    def response(self, request_id: str = "") -> bytes:
        return json_answer(self.status, self.error, retry=True, request_id=request_id)


OVER_CLIENT_CAP = Refusal(429, "Too many connections from this client.", "client_connections")
# Every connection taken and none to close for a newcomer.
BUSY = Refusal(503, "Service is busy, try again later.", "connections")
# The same answer to a request that waited past its deadline for a large-body slot or for
# Django.
WAITED_TOO_LONG = Refusal(BUSY.status, BUSY.error, "busy")

# RFC 9112 6.1: a transfer coding the server does not decode is answered 501. gunicorn refuses
# unknown ones itself but passed gzip, deflate, compress and identity before chunked as plain
# chunked: the body reached Django still compressed (undecoded_coding).
UNSUPPORTED_CODING = (
    "Transfer-Encoding other than chunked is not supported; send the body plain or chunked."
)
# gunicorn's refusals of a request it cannot parse, most specific kind first: gunicorn's status
# for it and one fixed sentence, the answer's error and (with the exception's class) its log line.
# The exception's own text quotes the client's bytes, which neither repeats: gunicorn logged it,
# so a JSON body sent as chunked but unframed put its first line (up to 8,190 bytes: the full
# hash_id) into a WARNING, and a malformed request line its query string.
PARSE_ERRORS: tuple[tuple[type[BaseException], int, str], ...] = (
    (parse.InvalidRequestLine, 400, "Malformed request line."),
    (parse.InvalidRequestMethod, 400, "Invalid request method."),
    (parse.InvalidHTTPVersion, 400, "Unsupported HTTP version."),
    (parse.LimitRequestLine, 414, "Request line is too long."),
    (parse.LimitRequestHeaders, 431, "Request header fields are too large or too many."),
    (parse.ObsoleteFolding, 400, "Obsolete line folding in a header field."),
    (parse.InvalidHeaderName, 400, "Invalid header field name."),
    (parse.InvalidHeader, 400, "Invalid header field."),
    (parse.UnsupportedTransferCoding, 501, UNSUPPORTED_CODING),
    (parse.InvalidChunkSize, 400, "Malformed chunked body."),
    (parse.ChunkMissingTerminator, 400, "Malformed chunked body."),
    (parse.InvalidChunkExtension, 400, "Malformed chunked body."),
    (parse.ExpectationFailed, 417, "Unsupported expectation: only 100-continue is."),
    (parse.InvalidProxyLine, 400, "Invalid PROXY protocol line."),
    (parse.ForbiddenProxyRequest, 403, "Proxy request not allowed."),
    (parse.InvalidSchemeHeaders, 400, "Contradictory scheme headers."),
    # A SCRIPT_NAME header (from a FORWARDED_ALLOW_IPS address) the path does not start with.
    (parse.ConfigurationProblem, 500, "Internal server error."),
    (ssl.SSLError, 403, "TLS handshake failed."),
)
# Errors in a response header Django made: the service's fault, logged with its traceback.
APPLICATION_ERRORS = (parse.InvalidResponseHeader, parse.InvalidResponseHeaderName)
# InvalidHeader names the field gunicorn refused (its own fixed name for these two).
FRAMING_ERRORS = {
    "TRANSFER-ENCODING": "Invalid Transfer-Encoding: send chunked once, last, over HTTP/1.1.",
    "CONTENT-LENGTH": (
        "Invalid Content-Length: send one decimal length, and none with Transfer-Encoding."
    ),
    "HOST": "Invalid Host: send one Host header field (HTTP/1.1 requires it).",
}
# Any other parse error (400) and an exception outside Django (500).
BY_STATUS = {400: "Bad request.", 500: "Internal server error."}


@dataclass
class Reading:
    """A body being read: since when, until when, how much of it so far."""

    started: float  # time.monotonic()
    deadline: float
    declared: int | None  # None: chunked
    received: int = 0

    def rate(self, now: float) -> float:
        """Bytes per second so far, BODY_CREDIT_BYTES included."""
        return _credit_rate(self.received, self.started, now)

    def doomed(self, now: float) -> bool:
        """At its rate so far (SLOT_CREDIT_BYTES credited), not even ARRIVING_SHARE of the
        declared body would arrive by its deadline: it would be dropped then anyway (a chunked
        body's size is not known: never)."""
        if self.declared is None:
            return False
        rate = (self.received + SLOT_CREDIT_BYTES) / max(now - self.started, 1e-3)
        arriving = self.received + rate * (self.deadline - now)
        return arriving < self.declared * ARRIVING_SHARE


@dataclass(eq=False)
class Connection:
    sock: Any
    client: str
    counted: bool = True  # in Admission's counts
    body_limit: int = 0  # the most bytes of its request's body read (set once its head is in)
    evicted: str = ""  # why it was closed to make room for another ("": it was not)
    evicted_rate: float = 0.0  # bytes per second its body came at, when closed reading it
    reading: Reading | None = None  # while its body is read


class Admission:
    """The connections a worker keeps: at most ``limit``, at most ``per_client`` (0: no cap)
    from one client (an address; an IPv6 address's /64); a client over its cap is refused at
    once. When all are taken, a new connection replaces the slowest: of those waiting for
    their request head (idle, trickling it, or draining a body answered unread), the one
    waiting longest, or the body being read slowest, whichever has sent the least for its
    time (BODY_CREDIT_BYTES); else the one waiting longest for a large-body slot; else it is
    refused at once. Before, 1,000 idle connections from one address made a new client wait
    24.5 s. Never the one just accepted: newcomers in a burst each closed the one before them
    while no older connection waited for its head, a normal client's as well."""

    def __init__(self, limit: int, per_client: int) -> None:
        self.limit = limit
        self.per_client = per_client
        self.by_socket: dict[Any, Connection] = {}
        self.by_client: dict[str, int] = {}  # only clients connected now
        self.waiting_for_head: dict[Connection, float] = {}  # since when; oldest first
        self.waiting_for_slot: dict[Connection, None] = {}
        self.reading_body: dict[Connection, None] = {}
        self.holding_slot: dict[Connection, None] = {}

    def admit(self, sock: Any, client: str) -> Connection | Refusal:
        """The admitted connection, or the response refusing it."""
        if self.per_client and self.by_client.get(client, 0) >= self.per_client:
            return OVER_CLIENT_CAP
        if len(self.by_socket) >= self.limit and not self._make_room():
            return BUSY
        conn = Connection(sock, client)
        self.by_socket[sock] = conn
        self.by_client[client] = self.by_client.get(client, 0) + 1
        self.waiting_for_head[conn] = time.monotonic()
        return conn

    def head_received(self, conn: Connection) -> None:
        self.waiting_for_head.pop(conn, None)

    def lingering(self, conn: Connection) -> None:
        """``conn`` only drains a body it was answered without: as evictable as an idle one."""
        self.waiting_for_head[conn] = time.monotonic()

    @contextmanager
    def waiting_for_a_slot(self, conn: Connection) -> Iterator[None]:
        with _member(self.waiting_for_slot, conn):
            yield

    @contextmanager
    def holding_a_slot(self, conn: Connection) -> Iterator[None]:
        with _member(self.holding_slot, conn):
            yield

    @contextmanager
    def reading(self, conn: Connection, declared: int | None, timeout_s: float) -> Iterator[None]:
        """``conn``'s body is read meanwhile (``declared`` bytes; None: chunked)."""
        now = time.monotonic()
        conn.reading = Reading(now, now + timeout_s, declared)
        try:
            with _member(self.reading_body, conn):
                yield
        finally:
            conn.reading = None

    def release(self, conn: Connection) -> None:
        self.waiting_for_head.pop(conn, None)
        self.waiting_for_slot.pop(conn, None)
        self.reading_body.pop(conn, None)  # closed for another: never chosen twice
        if not conn.counted:
            return
        conn.counted = False
        del self.by_socket[conn.sock]
        if (left := self.by_client[conn.client] - 1) > 0:
            self.by_client[conn.client] = left
        else:
            del self.by_client[conn.client]

    def free_a_slot(self) -> bool:
        """Close the slowest large body that, judged as Reading.doomed does, cannot arrive by
        its deadline (it would be dropped then anyway) for a request waiting for its slot.
        Only such a one: either slot may hold an honest phone's photo that paused at its start."""
        now = time.monotonic()
        doomed = [
            c for c in self.holding_slot if not c.evicted and c.reading and c.reading.doomed(now)
        ]
        if not doomed:
            return False
        _cut(
            _slowest(doomed, now),
            "holding a large-body slot, too slow to arrive by its deadline",
            now,
        )
        return True

    def _make_room(self) -> bool:
        victim = self._victim(time.monotonic())
        if victim is None:
            return False
        self.release(victim)
        return True

    def _victim(self, now: float) -> Connection | None:
        idle = next(iter(self.waiting_for_head.items()), None)
        slowest = _slowest(list(self.reading_body), now) if self.reading_body else None
        if idle and (slowest is None or _credit_rate(0, idle[1], now) <= _rate(slowest, now)):
            return _cut(idle[0], "waiting longest for its head", now)
        if slowest:
            return _cut(slowest, "reading the slowest body", now)
        if self.waiting_for_slot:
            oldest = next(iter(self.waiting_for_slot))  # answers 503 itself (_large_slot)
            oldest.evicted = "waiting longest for a large-body slot"
            return oldest
        return None


@contextmanager
def _member(members: dict[Connection, None], conn: Connection) -> Iterator[None]:
    members[conn] = None
    try:
        yield
    finally:
        members.pop(conn, None)


def _credit_rate(received: int, since: float, now: float) -> float:
    return (received + BODY_CREDIT_BYTES) / max(now - since, 1e-3)


def _rate(conn: Connection, now: float) -> float:
    return conn.reading.rate(now) if conn.reading else 0.0  # 0: not reading a body


def _slowest(reading: list[Connection], now: float) -> Connection:
    return min(reading, key=lambda conn: _rate(conn, now))


def _cut(conn: Connection, why: str, now: float) -> Connection:
    """Close ``conn`` for another (``why``: for its log line). The kernel's socket is shut,
    not gevent's: gevent's shutdown raises cancel_wait_ex in the greenlet reading it, which
    gunicorn logged as an ERROR with its traceback (33 in a 30 s attack); the kernel's ends
    that read as a client that left does (end of file)."""
    conn.evicted = why
    if body := conn.reading:
        conn.evicted_rate = body.received / max(now - body.started, 1e-3)
    with suppress(OSError):
        getattr(conn.sock, "_sock", conn.sock).shutdown(socket.SHUT_RDWR)
    return conn


class Evictions:
    """Connections closed to make room, logged once per EVICTIONS_LOGGED_EVERY_S."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.counts: Counter[str] = Counter()
        self.fastest = 0.0  # the fastest body closed, bytes per second

    def add(self, conn: Connection) -> None:
        if not self.counts:
            gevent.spawn_later(EVICTIONS_LOGGED_EVERY_S, self.flush)
        self.counts[conn.evicted] += 1
        self.fastest = max(self.fastest, conn.evicted_rate)

    def flush(self) -> None:
        said = ", ".join(f"{count} {why}" for why, count in self.counts.most_common())
        self.log.info(
            "closed %d connections in %d s to make room for others (%s; bodies at most %.0f B/s)",
            self.counts.total(),
            EVICTIONS_LOGGED_EVERY_S,
            said,
            self.fastest,
        )
        self.counts.clear()
        self.fastest = 0.0


class Refusals:
    """The worker's own 429 and 503 answers, each counted (facia_worker_refusals_total) and
    logged as one INFO line per EVICTIONS_LOGGED_EVERY_S, with the first and last request id
    they gave: a line each would be thousands a second under a flood of connections, and
    without any, a refused client's X-Request-ID was found nowhere in the log."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.counts: Counter[Refusal] = Counter()
        self.first_id = self.last_id = ""

    def add(self, refusal: Refusal, request_id: str) -> None:
        from telemetry.metrics import count_worker_refusal  # after Django's setup (metrics)

        if not self.counts:
            gevent.spawn_later(EVICTIONS_LOGGED_EVERY_S, self.flush)
            self.first_id = request_id
        self.counts[refusal] += 1
        self.last_id = request_id
        count_worker_refusal(refusal.status, refusal.reason)

    def flush(self) -> None:
        said = ", ".join(
            f"{count} {refusal.status} {refusal.reason}"
            for refusal, count in self.counts.most_common()
        )
        self.log.info(
            "refused %d connections in %d s before Django (%s; request ids %s to %s)",
            self.counts.total(),
            EVICTIONS_LOGGED_EVERY_S,
            said,
            self.first_id,
            self.last_id,
        )
        self.counts.clear()


Buffered = Literal["small", "large", "over", "unread", "late", "busy", "too_large", "unavailable"]
# Answered with the body (or the rest of a chunked one) not read: the connection lingers.
# "over" is a chunked body read one byte past its limit: its client is still sending the
# rest (urllib.request posting 20 MiB chunked got a reset, 4 tries of 4, closed at once).
UNREAD: frozenset[Buffered] = frozenset(("over", "unread", "busy", "too_large", "unavailable"))


class BufferingWorker(GeventWorker):
    sockets: list[Any]  # set by gunicorn's Worker (untyped)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._django = Semaphore(1)
        self._large_bodies = BoundedSemaphore(LARGE_BODIES_AT_ONCE)
        self._refusals_lingering = BoundedSemaphore(REFUSALS_LINGERING)
        # The per-client cap is read after fork (run), once post_fork has set Django up.
        self._admission = Admission(self.cfg.worker_connections, 0)
        self._refusal_bytes = 0  # the most a lingering refusal reads, set in run as well
        self._evictions = Evictions(self.log)
        self._refusals = Refusals(self.log)
        # The size of GeventWorker.run's pool: the connections kept plus room to refuse.
        self.worker_connections = self.cfg.worker_connections + REFUSING_AT_ONCE

    def patch(self) -> None:
        patch_io()
        # As GeventWorker.patch does: gevent sockets over the inherited listeners.
        self.sockets = [
            gsocket.socket(s.FAMILY, gsocket.SOCK_STREAM, fileno=s.sock.detach())
            for s in self.sockets
        ]

    def run(self) -> None:
        self._admission.per_client = settings.CONNECTIONS_PER_CLIENT
        largest = max(
            settings.LIVENESS_MAX_BODY_BYTES, settings.UPLOAD_MAX_BYTES + UPLOAD_FORM_BYTES
        )
        self._refusal_bytes = HEAD_BYTES + largest  # 66 MiB by default
        super().run()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        conn = self._admission.admit(client, _client_address(addr))
        if isinstance(conn, Refusal):
            self._refuse(client, conn)
            return  # gevent's server closes the socket
        try:
            super().handle(listener, client, addr)
        finally:
            self._admission.release(conn)
            if conn.evicted:
                self._evictions.add(conn)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        conn = self._admission.by_socket.get(sock)
        if conn is None:
            raise StopIteration  # closed to make room while its head was being parsed
        self._admission.head_received(conn)
        # One request per connection, as the sync worker did: the next request may go to
        # the other worker, and an unread body never has to be drained.
        req.must_close = True
        if coding := undecoded_coding(req):
            raise parse.UnsupportedTransferCoding(coding)  # answered by handle_error, unread
        if not one_host(req):
            raise parse.InvalidHeader("HOST")  # answered by handle_error, unread
        if _is_probe(req, PROCESS_PROBE):
            self._send(sock, process_health(req.method, _request_id(req)), timeout_s=1)
            raise StopIteration
        if (
            _is_probe(req, READINESS_PROBE)
            and self._django.locked()
            and (answer := readiness(req.method, _request_id(req)))
        ):
            self._send(sock, answer, timeout_s=1)
            raise StopIteration
        # A lingering connection first gives back what it holds (a large-body slot).
        with ExitStack() as after, ExitStack() as held:
            buffered = self._buffer_body(req, conn, held)
            if buffered == "late":
                raise StopIteration  # closes the connection at once
            if buffered in UNREAD:  # after the answer, whichever sends it
                after.callback(self._linger, conn)
            if buffered in ("too_large", "unavailable"):
                request_id = _request_id(req)
                if buffered == "too_large":
                    answer = too_large(conn.body_limit, request_id)
                else:
                    answer = unavailable(request_id)
                self._send(sock, answer, timeout_s=1)
                raise StopIteration
            if buffered == "busy" or not self._django.acquire(timeout=DJANGO_WAIT_S):
                request_id = _request_id(req)
                self._refusals.add(WAITED_TOO_LONG, request_id)
                self._send(sock, WAITED_TOO_LONG.response(request_id), timeout_s=1)
                raise StopIteration
            # The response is written to memory under the lock and sent after it, so a
            # client that does not read its response holds no worker either.
            response = ResponseBuffer()
            try:
                try:
                    if not _is_probe(req, READINESS_PROBE):  # its view probes itself
                        self._refresh_readiness()
                    keepalive: bool = super().handle_request(listener_name, req, response, addr)
                    return keepalive
                finally:
                    self._django.release()
            finally:
                self._send(sock, response.getvalue())
                if buffered in ("large", "over"):
                    req.body = None  # the last reference to the body
                    release_memory()  # after the response: its client does not wait (~2 ms)

    def _refresh_readiness(self) -> None:
        """refresh_readiness; a connection it finds broken (Django's InterfaceError, which
        the probe does not catch) or an unreadable folder is the request's to meet, not a 500
        of its own."""
        try:
            refresh_readiness()
        except (DatabaseError, InterfaceError, OSError) as exc:
            self.log.warning("readiness probe failed: %s", type(exc).__name__)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """The answer to a request gunicorn could not parse (or serve), in place of gunicorn's
        (``Worker.handle_error``: an HTML page, and a log line quoting the client's bytes): JSON
        like every other answer, with gunicorn's status and a fixed sentence per kind, which
        its log line (stamped with the answer's request id) gives with the exception's class."""
        request_id = _request_id(req)
        refused = _refusal(exc)
        stamped = current_request_id.set(request_id)
        try:
            if refused:
                ip = addr[0] if addr else ""  # "": a Unix socket's peer
                self.log.warning(
                    "Invalid request from ip=%s: %s (%s)", ip, refused[1], type(exc).__name__
                )
            else:
                self.log.exception("Error handling request %s", request_target(req))
        finally:
            current_request_id.reset(stamped)
        status, sentence = refused or (500, BY_STATUS[500])
        self._send(client, json_answer(status, sentence, request_id=request_id), timeout_s=1)

    def _buffer_body(self, req: Any, conn: Connection, held: ExitStack) -> Buffered:
        """Read the body into memory (``req.body``); a large-body slot, when it needs one,
        stays in ``held``. "unread": declared over its limit, left for the view to answer
        (413) from an empty body; "over": a chunked body read one byte past its limit, for
        the view to answer 413; "late": it did not arrive in time; "busy": no slot came in
        time; "too_large": an admin page's body declared over its limit (unread); "unavailable":
        that limit could not be known (the database did not answer)."""
        size = _declared_length(req)
        limit = self._body_limit(req, size)
        if isinstance(limit, str):
            return limit
        conn.body_limit = limit
        if size is not None and size > limit:
            # Never read. An API view answers 413 from Content-Length; any other reader (CSRF
            # parsing a form) gets an empty body, never the socket (read there, with no
            # deadline, it held Django as long as the client trickled it); an admin page's
            # upload is answered 413 here. A client that waits for 100 Continue gets the
            # answer alone (gunicorn would send the 100 first).
            req.body = io.BytesIO()
            req._expected_100_continue = False
            return "too_large" if _is_admin(req) else "unread"
        if size == 0:
            return "small"
        if size is not None and size > LARGE_BODY_BYTES and not self._large_slot(conn, held):
            return "busy"
        if req._expected_100_continue:
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            req._expected_100_continue = False
        timeout_s = _body_timeout(limit if size is None else size)
        try:
            data = self._read(req, conn, held, size, limit, timeout_s)
        except gevent.Timeout:
            self.log.info("dropped a request whose body took over %s s", timeout_s)
            return "late"
        if isinstance(data, str):
            return data
        if conn.evicted:
            return "late"  # closed for another while it came: closes at once, unanswered
        # A plain BytesIO over bytes: Django's one read of the whole body is then the same
        # object, not a copy (gunicorn's Body copies a phone photo's 4.4 MB three times).
        req.body = io.BytesIO(data)
        if len(data) > limit:
            return "over"
        return "large" if len(data) > LARGE_BODY_BYTES else "small"

    def _read(
        self,
        req: Any,
        conn: Connection,
        held: ExitStack,
        size: int | None,
        limit: int,
        timeout_s: float,
    ) -> bytes | Literal["busy"]:
        """The body, read within its deadline (gevent.Timeout), where Admission can see how
        fast it comes."""
        if size is not None:
            with gevent.Timeout(timeout_s), self._admission.reading(conn, size, timeout_s):
                return _read_body(req, size, conn)
        # Chunked: one byte over the limit at most, so that the view can tell a body that is
        # too large; a slot once it is past the small bodies' size.
        with gevent.Timeout(BODY_TIMEOUT_S), self._admission.reading(conn, None, BODY_TIMEOUT_S):
            data = _read_chunked(req, min(limit, LARGE_BODY_BYTES) + 1, conn)
        if len(data) <= LARGE_BODY_BYTES or len(data) > limit or conn.evicted:
            return data
        if not self._large_slot(conn, held):
            return "busy"
        with gevent.Timeout(timeout_s), self._admission.reading(conn, None, timeout_s):
            return data + _read_chunked(req, limit + 1 - len(data), conn)

    def _body_limit(self, req: Any, size: int | None) -> int | Literal["busy", "unavailable"]:
        """The most bytes of ``req``'s body the worker reads: LIVENESS_MAX_BODY_BYTES (or its
        route's smaller limit, ROUTE_LIMITS), or the calibration zip's form on an admin page
        posted by a user who may calibrate (asked under Django's lock, only for a body that
        may be over the first): without the lookup anyone could make a worker buffer two
        bodies of 65 MiB at once, 4 times /liveness's limit. "busy": no turn at Django in
        time; "unavailable": the database did not say."""
        limit: int = settings.LIVENESS_MAX_BODY_BYTES
        if not _is_admin(req):
            return min(limit, route_limit(req.path))
        if size is not None and size <= limit:
            return limit
        from calibration.uploads import cookies_may_upload  # Django is set up by now

        if not self._django.acquire(timeout=DJANGO_WAIT_S):
            return "busy"
        try:
            close_old_connections()  # as at the start of a request: this is before one
            allowed = cookies_may_upload(_header(req, "COOKIE"))
        finally:
            self._django.release()
        if allowed is None:
            return "unavailable"
        return max(limit, settings.UPLOAD_MAX_BYTES + UPLOAD_FORM_BYTES) if allowed else limit

    def _large_slot(self, conn: Connection, held: ExitStack) -> bool:
        """A large-body slot within LARGE_BODY_WAIT_S, unless the connection is closed for
        another meanwhile."""
        deadline = time.monotonic() + LARGE_BODY_WAIT_S
        with self._admission.waiting_for_a_slot(conn):
            while not conn.evicted and (left := deadline - time.monotonic()) > 0:
                if self._large_bodies.acquire(timeout=min(left, EVICTION_CHECK_S)):
                    held.callback(self._large_bodies.release)
                    held.enter_context(self._admission.holding_a_slot(conn))
                    return True
                self._admission.free_a_slot()  # taken once its holder's read has ended
        self.log.info("no large-body slot for a request: answered 503")
        return False

    def _linger(self, conn: Connection) -> None:
        """Read and drop what the client still sends, for at most LINGER_S (or until it is
        closed to make room), after its answer and the end of ours (so a client reading the
        answer sees it whole and closes). Not a connection closed to make room: it no longer
        counts, and lingering uncounted, each newcomer's eviction would hold another greenlet."""
        if conn.evicted:
            return
        self._admission.lingering(conn)
        _drain(conn.sock)

    def _refuse(self, sock: Any, refusal: Refusal) -> None:
        """Answer ``refusal`` without reading the request, then drain what the client still
        sends (at most one request's worth), as ``_linger`` does, unless REFUSALS_LINGERING
        refusals already do: then the connection closes at once."""
        from telemetry.middleware import new_request_id

        request_id = new_request_id()
        self._refusals.add(refusal, request_id)
        self._send(sock, refusal.response(request_id), timeout_s=1)
        if not self._refusals_lingering.acquire(blocking=False):
            return
        try:
            _drain(sock, self._refusal_bytes)
        finally:
            self._refusals_lingering.release()

    def _send(self, sock: Any, data: bytes, timeout_s: float = RESPONSE_TIMEOUT_S) -> None:
        try:
            with gevent.Timeout(timeout_s):
                sock.sendall(data)
        except gevent.Timeout:
            self.log.info("dropped a response not read within %s s", timeout_s)
        except OSError:
            pass  # the client went away


def _drain(sock: Any, most: float = float("inf")) -> None:
    """Half-close ``sock`` once its answer is sent (a client reading it sees its end), then
    read and drop what the client still sends until it closes, for at most LINGER_S and
    ``most`` bytes."""
    dropped = bytearray(LINGER_CHUNK)
    with suppress(OSError), gevent.Timeout(LINGER_S, False):
        sock.shutdown(socket.SHUT_WR)
        while most > 0 and (got := sock.recv_into(dropped)):
            most -= got


LIBC = ctypes.CDLL("libc.so.6")


def release_memory() -> None:
    """Hand the memory of a large body back to the OS once it is answered.

    A phone photo's body is several MB, copied a few times (body, JSON string, base64 bytes);
    freed (the request's own cycles are broken, telemetry.middleware), glibc keeps the heap.
    The collection catches cycles made by code we do not control. A young-generation
    collection plus malloc_trim (about 2 ms) holds a worker near its start-up RSS; doing it
    only for large bodies keeps small requests on a warm heap (serving every allocation from
    fresh mmap pages cost ~40% of a 640x480 request).
    """
    gc.collect(1)
    LIBC.malloc_trim(0)


class ResponseBuffer(io.BytesIO):
    """Stands in for the client socket while Django answers: gunicorn writes here."""

    def sendall(self, data: bytes) -> None:
        self.write(data)

    def send(self, data: bytes) -> int:
        return self.write(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        return self.write(file.read(count))

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass  # getvalue() is still needed


def _read_body(req: Any, size: int, conn: Connection) -> bytes:
    """The body, read straight from the socket into one buffer when its length is declared
    (what gunicorn's parser already holds first): gunicorn's readers copy each chunk two or
    three times, 12 ms of a phone photo's request. A chunked body goes through gunicorn."""
    reader = req.body.reader
    if not isinstance(reader, LengthReader):
        chunked: bytes = req.body.read(size)  # gunicorn has no annotations
        return chunked
    body = bytearray(size)
    head = reader.unreader.take_buffered()[:size]
    body[: len(head)] = head
    view, got = memoryview(body), len(head)
    _received(conn, got)
    while got < size and (n := conn.sock.recv_into(view[got:])):
        got += n
        _received(conn, got)
    if got < size:
        # RFC 9112 8: a message cut short is incomplete, never processed (judged, it spent a
        # unit on a body the client gave up sending). gunicorn's handle logs it at DEBUG and
        # closes unanswered, as it does a chunked body cut short.
        raise parse.NoMoreData()
    return bytes(body)


def _read_chunked(req: Any, most: int, conn: Connection) -> bytes:
    """Up to ``most`` bytes of a chunked body (fewer: it ended), in CHUNKED_STEP pieces."""
    parts: list[bytes] = []
    got = 0
    while got < most and (part := req.body.read(min(CHUNKED_STEP, most - got))):
        parts.append(part)
        got += len(part)
        _received(conn, got)
    return b"".join(parts)


def _received(conn: Connection, got: int) -> None:
    if conn.reading:
        conn.reading.received = got


def one_host(req: Any) -> bool:
    """Whether ``req`` names its host as RFC 9112 3.2 asks: one Host field, which an HTTP/1.1
    request must send. gunicorn served one without it (201 from /liveness), and Django then
    checked ALLOWED_HOSTS against the bind address instead of anything the client sent."""
    hosts = sum(1 for name, _ in req.headers if name == "HOST")
    return hosts == 1 or (hosts == 0 and req.version < (1, 1))


def undecoded_coding(req: Any) -> str:
    """The request's Transfer-Encoding when it names a coding besides chunked, else ``""``.
    gunicorn has refused every other malformed or unknown list by then (chunked twice, not
    last, on HTTP/1.0, with Content-Length; any coding outside gzip, deflate, compress and
    identity) and reads the body as plain chunked whatever precedes it."""
    values = [value for name, value in req.headers if name == "TRANSFER-ENCODING"]
    codings = [coding.strip(" \t").lower() for value in values for coding in value.split(",")]
    return ", ".join(values) if codings and codings != ["chunked"] else ""


def _refusal(exc: BaseException) -> tuple[int, str] | None:
    """The status and sentence of a request refused for what the client sent; None for an
    error of the service's own (answered 500)."""
    if isinstance(exc, APPLICATION_ERRORS):
        return None
    if isinstance(exc, parse.InvalidHeader) and (named := FRAMING_ERRORS.get(exc.hdr)):
        return 400, named
    for kind, status, sentence in PARSE_ERRORS:
        if isinstance(exc, kind):
            return status, sentence
    if isinstance(exc, parse.ParseException):  # a kind newer than this table
        return 400, BY_STATUS[400]
    return None


def request_target(req: Any) -> str:
    """What an error's log line names of ``req``: its method and path as Django's access line
    names them (decoded, token-like runs redacted), never the query string."""
    if req is None:
        return "(no request read)"
    return f"{req.method} {redact_tokens(unquote(req.path))}"


def _request_id(req: Any) -> str:
    """The id of the worker's own answer to ``req``: the client's ``X-Request-ID`` when it is
    sane (as Django's answers echo it), else a fresh one (also when the head was not parsed)."""
    from telemetry.middleware import sane_or_new

    return sane_or_new("" if req is None else _header(req, "X-REQUEST-ID"))


def _is_probe(req: Any, path: str) -> bool:
    """A GET or HEAD of ``path`` without a body (anything else goes to Django: a JSON 405 for
    another method)."""
    return req.method in ("GET", "HEAD") and req.path == path and _declared_length(req) == 0


def route_limit(path: str) -> int:
    """The body limit of the route ``path`` (raw, as the request line gives it) names in
    ROUTE_LIMITS; LIVENESS_MAX_BODY_BYTES for any other."""
    decoded = unquote(path)
    for pattern, setting in ROUTE_LIMITS:
        if pattern.search(decoded):
            return int(getattr(settings, setting))
    return int(settings.LIVENESS_MAX_BODY_BYTES)


def _is_admin(req: Any) -> bool:
    return bool(req.path.startswith(f"/{settings.ADMIN_URL}"))


def _body_timeout(size: int) -> float:
    """BODY_TIMEOUT_S per LIVENESS_MAX_BODY_BYTES (or part of it) of a body of ``size``."""
    return BODY_TIMEOUT_S * max(1.0, size / settings.LIVENESS_MAX_BODY_BYTES)


def _header(req: Any, name: str) -> str:
    """``req``'s header ``name`` (upper case, as gunicorn keeps them); "" when absent."""
    return next((value for key, value in req.headers if key == name), "")


def _declared_length(req: Any) -> int | None:
    """The declared length (0 without a body); None for a chunked body (read as it comes, at
    most one byte over the limit)."""
    if length := _header(req, "CONTENT-LENGTH"):
        return int(length)
    return None if isinstance(req.body.reader, ChunkedReader) else 0


def _client_address(addr: Any) -> str:
    """The unit of the per-client connection cap: the peer's address, an IPv6 one's /64 (a
    home line or a cloud host holds all of its /64: counted per address, one client took 32
    connections from each of as many addresses as it liked), as the login throttle counts
    clients; a Unix socket's peers share one."""
    from guard.throttle import client_network  # after Django's setup (its models)

    return client_network(str(addr[0])) if isinstance(addr, tuple) and addr else "local"


def patch_io() -> None:
    """Cooperative sockets, select and sleep; threads and their queues stay native (a native
    thread waiting on a patched queue raises LoopExit; see also the module's doc)."""
    monkey.patch_all(thread=False, queue=False)
