"""POST /liveness the way the Facia guide's test script does, and the capture-session calls,
with typed errors that carry the service's ``code`` and ``Retry-After``."""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.utils
import http.client
import json
import math
import mimetypes
import os
import socket
import ssl
import stat
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

ACCEPTED_TYPES = ("image/jpeg", "image/png")
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
DEFAULT_TIMEOUT = 30.0
# A day: more bounds nothing useful, and threading.Timer's limit (TIMEOUT_MAX, ~292 years) and
# a socket's were an OverflowError (a traceback, exit 1) for --timeout 1e10.
MAX_TIMEOUT = 86400.0
# The longest wait a Retry-After is read as (RFC 9110 10.2.3 sets no limit): the service's
# longest is a session's lifetime; 99999999 s from a broken proxy is not a wait to honour.
MAX_RETRY_AFTER = 3600.0
# A 400 that refuses the image or the JSON body carrying it (liveness.answers, the service's
# table of answers): ImageRejected for check() and send_selfie(). Any other 400 (a Host not in
# the service's ALLOWED_HOSTS, a worker's refusal of a malformed request) is a ServiceError.
IMAGE_REFUSED = (
    "Selfie_image is required and must be a JPEG, JPG or PNG.",
    "selfie_image must be a base64-encoded string.",
    "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format.",
    "Request body must be a JSON object.",
)
IMAGE_REFUSED_PREFIXES = ("Malformed JSON.",)  # malformed, or a duplicate key
IMAGE_REFUSED_CODES = ("image_too_many_scans", "image_too_many_pixels")  # a session's selfie
# An answer's text in an error, at most (a JSON "error" as long as the body took it whole).
MAX_ERROR_TEXT = 200
# The service's largest answer (a session's state) is under 1 KiB; a proxy's error page a few:
# a body of GBs from a hostile or broken server took as much memory (620 MB for 600 MB).
MAX_ANSWER_BYTES = 1024 * 1024
# 4x the service's default body limit (16 MiB, 12 MiB of image once in base64): a larger file
# is refused before it is read (reading, base64 and JSON held ~4x the file in memory).
MAX_IMAGE_BYTES = 64 * 1024 * 1024


class FaciaError(Exception):
    """Base class; ``exit_code`` is what the command line exits with.

    ``code`` is the body's machine-readable ``code`` (a 422 gate such as ``no_face``, or a
    session token's ``token_expired``...), ``retry_after`` the seconds of ``Retry-After``,
    ``body`` the decoded JSON answer (empty when there was none)."""

    exit_code = 6

    def __init__(
        self,
        message: str,
        status: int | None = None,
        request_id: str = "",
        code: str | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after
        self.body = body or {}

    def as_dict(self) -> dict[str, Any]:
        failure: dict[str, Any] = {"error": str(self), "status": self.status}
        failure["exit_code"] = self.exit_code
        if self.code is not None:
            failure["code"] = self.code
        if self.retry_after is not None:
            failure["retry_after"] = self.retry_after
        if self.request_id:
            failure["request_id"] = self.request_id
        return failure


class UsageError(FaciaError):
    exit_code = 2


class AuthError(FaciaError):
    exit_code = 3


class ImageRejected(FaciaError):
    """422 (a quality gate: ``code`` says which), or, answering a call that sent an image, 413
    or a 400 refusing the image or its JSON body."""

    exit_code = 4


class QuotaExceeded(FaciaError):
    """429: the tenant's request limit (no ``retry_after``), or a throttle (RateLimited)."""

    exit_code = 5


class RateLimited(QuotaExceeded):
    """429 from a throttle (failed authentications, tenant rate): wait ``retry_after``."""


class ServiceError(FaciaError):
    """Network failure, 5xx, or an answer the client does not understand."""

    exit_code = 6


class Timeout(ServiceError):
    """No complete answer within the client's ``timeout``."""


class NotFound(ServiceError):
    """404: no such session (of this tenant)."""


class Conflict(ServiceError):
    """409: the session already has its verdict, or a selfie of it is being judged."""


ERRORS_BY_STATUS: dict[int, type[FaciaError]] = {
    401: AuthError,
    404: NotFound,
    409: Conflict,
    422: ImageRejected,
    429: QuotaExceeded,
}


@dataclass(frozen=True)
class Verdict:
    is_live: bool
    liveness_score: float
    request_id: str
    profile: str = ""  # X-Liveness-Profile: fast or thorough
    capture: str = ""  # X-Liveness-Capture: frame or crop
    replayed: bool = False  # Idempotent-Replayed: the answer an Idempotency-Key got before

    def as_dict(self) -> dict[str, Any]:
        verdict: dict[str, Any] = {
            "is_live": int(self.is_live),
            "liveness_score": self.liveness_score,
            "request_id": self.request_id,
        }
        if self.replayed:
            verdict["replayed"] = True
        return verdict


@dataclass(frozen=True)
class Session:
    """An open capture session: hand ``session_id`` and ``token`` (never the hash_id) to
    the browser."""

    session_id: str
    # A bearer token until the session expires: not in a repr a backend may log.
    token: str = field(repr=False)
    expires_at: str
    expires_in: int


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def request_id(self) -> str:
        return self.headers.get("X-Request-ID", "")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except RecursionError as exc:  # a traceback, exit 1 (spoof) from the command line
            raise ValueError("JSON nested too deep") from exc


def mime_type_of(path: Path, data: bytes) -> str:
    """The file's type from its name (as the guide's script does), else from its first bytes."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed in ACCEPTED_TYPES:
        return guessed
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    raise ImageRejected(f"{path} is not a PNG or JPEG image")


def read_image(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_IMAGE_BYTES. Opened without blocking: a FIFO
    with no writer, or a device such as /dev/zero, hung or filled memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise UsageError(f"cannot read the selfie image file: {_why(exc)}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError("cannot read the selfie image file: not a regular file")
        if info.st_size > MAX_IMAGE_BYTES:
            raise ImageRejected(f"{path} is over {MAX_IMAGE_BYTES // 2**20} MiB")
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read(MAX_IMAGE_BYTES)
    except OSError as exc:
        raise UsageError(f"cannot read the selfie image file: {_why(exc)}") from exc
    finally:
        os.close(fd)


def _why(exc: Exception) -> str:
    """Why a file could not be read, without its name: a usage error never repeats a value
    typed (a hash_id typed where the selfie goes was "cannot read <hash_id>")."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "embedded null byte" if isinstance(exc, ValueError) else type(exc).__name__


def encode_image(path: Path) -> str:
    """``data:<mime>;base64,<...>``, as in the guide's ``encode_image_with_mime``."""
    data = read_image(path)
    return f"data:{mime_type_of(path, data)};base64,{base64.b64encode(data).decode('ascii')}"


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested 100,000 deep
        return {}
    return payload if isinstance(payload, dict) else {}


def _reply_text(body: bytes) -> str:
    payload = _payload(body)
    if payload:
        return str(payload.get("error") or payload.get("message") or payload)[:MAX_ERROR_TEXT]
    return body.decode("utf-8", "replace")[:MAX_ERROR_TEXT]


def _retry_after(headers: Message) -> float | None:
    """Retry-After's seconds (RFC 9110 10.2.3): delta-seconds (digits only), or an HTTP-date
    as the seconds from now (0 when past), at most MAX_RETRY_AFTER; None when absent (the
    quota's 429) or neither (float() took nan, inf, -5 and 1_0: NaN and Infinity in the
    command's JSON, which is then not JSON)."""
    value = str(headers.get("Retry-After", "")).strip()
    if value.isascii() and value.isdigit():
        return MAX_RETRY_AFTER if len(value) > 9 else min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as an HTTP-date always is
        when = when.replace(tzinfo=datetime.UTC)
    seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return float(min(max(math.ceil(seconds), 0), MAX_RETRY_AFTER))


def _refuses_image(status: int, payload: dict[str, Any]) -> bool:
    """Whether a 400 or 413 to a call that sent an image refuses that image (or its body)."""
    if status == 413:
        return True
    text, code = payload.get("error"), payload.get("code")
    if code in IMAGE_REFUSED_CODES or text in IMAGE_REFUSED:
        return True
    return isinstance(text, str) and text.startswith(IMAGE_REFUSED_PREFIXES)


def error_for(reply: Reply, sent_image: bool = False) -> FaciaError:
    """The typed exception of a non-2xx answer; ``sent_image``: to check() or send_selfie()."""
    retry_after = _retry_after(reply.headers)
    kind = ERRORS_BY_STATUS.get(reply.status, ServiceError)
    if reply.status == 429 and retry_after is not None:
        kind = RateLimited
    payload = _payload(reply.body)
    if reply.status in (400, 413) and sent_image and _refuses_image(reply.status, payload):
        kind = ImageRejected
    code = payload.get("code")
    return kind(
        f"HTTP {reply.status}: {_reply_text(reply.body)}",
        reply.status,
        reply.request_id,
        code if isinstance(code, str) else None,
        retry_after,
        payload,
    )


def _verdict_of(result: Any) -> tuple[bool, float]:
    """``is_live`` 0 or 1 and ``liveness_score`` a number in [0, 1], as the contract says, or
    TypeError: bool("0") read a string "0" as live, and float() took "nan"."""
    live, score = result["is_live"], result["liveness_score"]
    if type(live) not in (int, bool) or live not in (0, 1):
        raise TypeError("is_live is not 0 or 1")
    if type(score) not in (int, float) or not (math.isfinite(score) and 0 <= score <= 1):
        raise TypeError("liveness_score is not a number in [0, 1]")
    return bool(live), float(score)


def is_idempotency_key(value: str) -> bool:
    """What the service takes as an Idempotency-Key: 1-255 printable ASCII characters but the
    comma (its mark of a repeated header), once HTTP has dropped the spaces around a header's
    value (gunicorn does): a key of spaces only reaches it empty and is answered 400."""
    printable = value.isascii() and value.isprintable() and "," not in value
    return bool(value.strip(" ")) and len(value) <= 255 and printable


def _check_url(url: str) -> None:
    """UsageError unless ``url`` is an http(s) address the client can use. The value is never
    repeated (a usage error never is: a hash_id typed there went to stderr, even twice)."""
    if not url.startswith(("http://", "https://")):
        raise UsageError("--url must start with http:// or https://")
    try:
        parts = urllib.parse.urlsplit(url)
        host, _ = parts.hostname, parts.port  # port: ValueError unless a number 0-65535
    except ValueError:
        raise UsageError("--url is not a valid address (its port?)") from None
    if not host:
        raise UsageError("--url names no host")
    if "@" in parts.netloc:  # http.client sends no userinfo: it was only a password on stderr
        raise UsageError("--url must not hold a user name or password")
    try:
        host.encode("idna")  # an empty label (a..b) or one over 63 characters: UnicodeError
    except UnicodeError:
        raise UsageError("--url names a host that is not a valid DNS name") from None
    if not (url.isprintable() and " " not in url):  # urlsplit drops a tab or a newline
        raise UsageError("--url must not hold spaces or control characters")
    if not parts.path.isascii():  # http.client raised UnicodeEncodeError
        raise UsageError("--url has a path that is not ASCII (percent-encode it)")
    if "?" in url or "#" in url:  # the endpoint's path went after it: POST //liveness, a 404
        raise UsageError("--url must not hold a query (?) or a fragment (#)")


# The service's endpoints: a --url ending in one (the seed's http://HOST:PORT/liveness) is
# an endpoint's address, and the call went to /liveness/liveness, a bare 404.
ENDPOINTS = ("liveness", "sessions")


def _endpoint_hint(url: str) -> str:
    """What to say with a 404 when ``url`` ends in an endpoint's name (a service mounted at
    such a path behind a proxy is possible: a hint, not a usage error)."""
    last = urllib.parse.urlsplit(url).path.rstrip("/").rpartition("/")[2]
    if last not in ENDPOINTS:
        return ""
    return (
        f" (--url ends in /{last}: give the service's address, http(s)://HOST[:PORT][/PATH],"
        " without the endpoint)"
    )


class FaciaClient:
    def __init__(self, url: str, hash_id: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        _check_url(url)
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not (number and math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            # 0 or less timed out before sending (exit 6, as a service that never answered);
            # the value is not repeated: a usage error never is (a hash_id typed there).
            raise UsageError(
                f"--timeout must be a number of seconds above 0, at most {MAX_TIMEOUT:g}"
            )
        if not hash_id:
            raise UsageError("a hash_id is required (--hash-id or FACIA_HASH_ID)")
        if not (hash_id.isascii() and hash_id.isprintable()):  # it goes in X-Hash-Id too
            raise UsageError("a hash_id is printable ASCII, as the service issues them")
        self.url = url.rstrip("/")
        self.hash_id = hash_id
        self.timeout = timeout

    def check(self, image: str | Path, idempotency_key: str | uuid.UUID | None = None) -> Verdict:
        """POST /liveness: the verdict, or the typed error of the answer. With an
        ``idempotency_key`` (one per check, e.g. a uuid4), calling again with the same key and
        image after a timeout or a 5xx gets the first verdict if there was one, without
        spending a second unit (``replayed``); a ``uuid.UUID`` is sent as its text."""
        if isinstance(idempotency_key, uuid.UUID):
            idempotency_key = str(idempotency_key)
        if idempotency_key is not None and not (
            isinstance(idempotency_key, str) and is_idempotency_key(idempotency_key)
        ):  # checked before the image is read (up to 64 MiB, then encoded)
            raise UsageError("an idempotency key is 1 to 255 printable ASCII characters, no comma")
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        body = {"hash_id": self.hash_id, "selfie_image": encode_image(Path(image))}
        reply = self._call("POST", "/liveness", body, headers, sent_image=True)
        try:
            live, score = _verdict_of(reply.json()["liveness_result"])
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unexpected(reply) from exc
        profile = reply.headers.get("X-Liveness-Profile", "")
        capture = reply.headers.get("X-Liveness-Capture", "")
        replayed = reply.headers.get("Idempotent-Replayed") == "true"
        return Verdict(live, score, reply.request_id, profile, capture, replayed)

    def open_session(self) -> Session:
        """POST /sessions (from the backend, with the hash_id)."""
        reply = self._call("POST", "/sessions", {"hash_id": self.hash_id})
        try:
            opened = reply.json()
            return Session(
                str(opened["session_id"]),
                str(opened["token"]),
                str(opened["expires_at"]),
                int(opened["expires_in"]),
            )
        except (ValueError, KeyError, TypeError, OverflowError) as exc:  # int(Infinity)
            raise self._unexpected(reply) from exc

    def session(self, session_id: str) -> dict[str, Any]:
        """GET /sessions/{id} with the hash_id in X-Hash-Id: its state and, once ``done``,
        ``liveness_result`` in /liveness's shape."""
        path = f"/sessions/{urllib.parse.quote(session_id, safe='')}"
        reply = self._call("GET", path, headers={"X-Hash-Id": self.hash_id})
        state = _payload(reply.body)
        if "state" not in state:
            raise self._unexpected(reply)
        return state

    def send_selfie(self, session: Session, image: str | Path) -> dict[str, Any]:
        """POST /sessions/{id}/selfie with the session's token (what capture.js does): 202,
        the verdict is then read with ``session()``."""
        body = {"selfie_image": encode_image(Path(image))}
        bearer = {"Authorization": f"Bearer {session.token}"}
        path = f"/sessions/{urllib.parse.quote(session.session_id, safe='')}/selfie"
        reply = self._call("POST", path, body, bearer, sent_image=True)
        return _payload(reply.body)

    def _unexpected(self, reply: Reply) -> ServiceError:
        return ServiceError(
            f"unexpected answer: {reply.body[:200]!r}", reply.status, reply.request_id
        )

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        sent_image: bool = False,
    ) -> Reply:
        """One request; a 2xx Reply, or the typed error of any other answer."""
        reply = self._send(method, path, body, headers or {})
        if not 200 <= reply.status < 300:
            error = error_for(reply, sent_image)
            hint = _endpoint_hint(self.url) if reply.status == 404 else ""
            if hint:
                error.args = (f"{error}{hint}",)
            raise error
        return reply

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        try:
            return self._exchange(method, path, data, headers)
        except AnswerTooLarge as exc:
            raise ServiceError(f"answer from {self.url} over {MAX_ANSWER_BYTES} bytes") from exc
        except http.client.HTTPException as exc:  # not HTTP, or a body cut short
            broken = f"{type(exc).__name__}: {str(exc)[:100]}"
            raise ServiceError(f"unreadable answer from {self.url}: {broken}") from exc
        except OSError as exc:
            if isinstance(exc, TimeoutError):  # connecting, or waiting for any part of it
                raise Timeout(f"no answer from {self.url} within {self.timeout:g} s") from exc
            raise ServiceError(f"cannot reach {self.url}: {exc}") from exc

    def _exchange(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> Reply:
        """The whole answer, whatever its status, within ``timeout`` from resolving the name
        to the last byte; no byte of the request is sent once the deadline has passed (a POST
        sent late was judged, a unit spent, while the client reported a Timeout). The service
        answers a body declared over its limit (413), and refusals before a body is read,
        without reading it, then closes: the sending may end in a reset while the answer is
        already there to read (as urllib3 reads it; urllib.request raises the reset instead)."""
        url = urllib.parse.urlsplit(self.url)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connection = kind(url.netloc, timeout=self.timeout)
        deadline = _Deadline(self.timeout)
        try:
            connection.sock = deadline.connect(connection.host, connection.port, url.scheme)
            # answered before the body was all sent: that answer is read below
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request(method, url.path + path, data, headers)
            response = connection.getresponse()
            body = response.read(MAX_ANSWER_BYTES + 1)
            if deadline.expired.is_set():
                raise TimeoutError
            if len(body) > MAX_ANSWER_BYTES:
                raise AnswerTooLarge
            if response.length:  # read(amt) returns what came before the close, unlike read()
                raise http.client.IncompleteRead(body, response.length)
            return Reply(response.status, response.headers, body)
        except (http.client.HTTPException, OSError):
            if deadline.expired.is_set():  # the watchdog shut the socket: it is late
                raise TimeoutError from None
            raise
        finally:
            deadline.close()
            connection.close()


class AnswerTooLarge(Exception):
    """A body over MAX_ANSWER_BYTES (turned into a ServiceError)."""


class _Deadline:
    """One exchange's deadline: resolving the name (in a helper thread: getaddrinfo cannot be
    interrupted), connecting to each address with the time that remains, and a watchdog that
    shuts the connection when the time is up. ``timeout`` on a socket bounds each operation
    only: a server sending a byte every 0.3 s held a 1 s client for as long as it liked.

    The watchdog and ``_attach`` share a lock: a socket is either attached before the deadline
    (and shut by the watchdog once it passes, so a send fails) or refused after it, never used
    unwatched, so no byte of a request leaves after the deadline."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.end = time.monotonic() + timeout
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._watchdog = threading.Timer(timeout, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def remaining(self) -> float:
        """Seconds left; TimeoutError when none are."""
        left = self.end - time.monotonic()
        if left <= 0 or self.expired.is_set():
            raise TimeoutError
        return left

    def connect(self, host: str, port: int, scheme: str) -> socket.socket:
        """A connected socket (TLS for https), watched; TimeoutError past the deadline."""
        sock = self._open(self._resolve(host, port))
        if scheme == "https":
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            sock.settimeout(self.remaining())
            # the watched duplicate of the plain socket shuts the TLS one's connection too
            sock = context.wrap_socket(sock, server_hostname=host)
            self.remaining()
        sock.settimeout(self.timeout)
        return sock

    def _resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """getaddrinfo within the time left: it runs in a daemon thread, left behind if late."""
        found: list[Any] = []

        def resolve() -> None:
            try:
                found.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
            except Exception as exc:  # socket.gaierror, UnicodeError: raised below
                found.append(exc)

        resolver = threading.Thread(target=resolve, name="facia-client-resolve", daemon=True)
        resolver.start()
        resolver.join(self.remaining())
        if not found:
            raise TimeoutError
        if isinstance(found[0], BaseException):
            raise found[0]
        return list(found[0])

    def _open(self, addresses: list[tuple[Any, ...]]) -> socket.socket:
        """The first address that accepts, each tried with the time that remains (each got
        the whole timeout: a name of three unreachable addresses took three times it)."""
        error: OSError = OSError("getaddrinfo returned no address")
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.remaining())
                sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._attach(sock)
                return sock
            except OSError as exc:
                sock.close()
                if isinstance(exc, TimeoutError):
                    raise TimeoutError from None  # all the time is spent
                error = exc
        raise error

    def _attach(self, sock: socket.socket) -> None:
        """Watch ``sock`` (a duplicate of it: wrapping it in TLS detaches the original);
        TimeoutError if the deadline has passed."""
        with self._lock:
            if self.expired.is_set() or time.monotonic() >= self.end:
                raise TimeoutError
            self._watched.append(sock.dup())

    def _expire(self) -> None:
        """Past the deadline: shut the connection, which wakes a blocked send or receive and
        fails any later send."""
        with self._lock:
            self.expired.set()
            for sock in self._watched:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._watchdog.cancel()
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()
