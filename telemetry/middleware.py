"""The middleware every request passes first and last, outermost first (settings.MIDDLEWARE):
``ReleaseRequestMiddleware`` breaks the request's cycles once it is answered,
``RequestIdMiddleware`` gives it an id (``X-Request-ID`` in and out), and
``ObservabilityMiddleware`` puts that id in every log line, then writes one JSON access line
and the request metrics. The id is read through ``request_id_of``."""

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from telemetry import metrics
from telemetry.logs import current_request_id, may_be_key, redact_tokens

log = logging.getLogger("facia.request")

HEADER = "X-Request-ID"
# Echo a caller's ID only when it is short and harmless in logs and headers.
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The request's own attribute, set once by RequestIdMiddleware; read and written only through
# the two accessors below (a Django request declares no such attribute).
_REQUEST_ID = "request_id"


def set_request_id(request: object, value: str) -> None:
    setattr(request, _REQUEST_ID, value)


def request_id_of(request: object) -> str:
    """The id RequestIdMiddleware gave ``request`` (a Django or DRF request), else ``""``."""
    value = getattr(request, _REQUEST_ID, "")
    return value if isinstance(value, str) else ""


def forget_request_id(**kwargs: Any) -> None:
    """request_finished's receiver: the id is set until Django's own log line for a 4xx/5xx,
    written after the middleware returns, has been written."""
    current_request_id.set(None)


# HEADER as WSGI names it: read from META, as request.headers would, without building
# request.headers (every header of the request parsed into a new mapping: 20-40 us, nothing
# else on /liveness reads it).
META_KEY = "HTTP_" + HEADER.upper().replace("-", "_")


def new_request_id() -> str:
    """A fresh id: for a request without a sane one of its own, and for the answers gunicorn's
    worker gives before it has read a request's head (facia_site.worker)."""
    return uuid.uuid4().hex


def sane_or_new(incoming: str) -> str:
    """The client's own id (``X-Request-ID``) when it is sane and cannot be a key, else a fresh
    one: the id is written in every log record of the request and stored with its check, so a
    hash_id or capture token sent as the id (``may_be_key``) would be kept there in clear."""
    if SANE_ID.fullmatch(incoming) and not may_be_key(incoming):
        return incoming
    return new_request_id()


def request_id_for(request: HttpRequest) -> str:
    return sane_or_new(request.META.get(META_KEY, ""))


# Attributes by which Django's own middleware make a request refer to itself: auth's
# ``user`` (a lazy object whose closure holds the request) and ``auser`` (a partial of it),
# messages' storage (which holds the request).
SELF_REFERENCES = ("user", "auser", "_messages")


class ReleaseRequestMiddleware:
    """Outermost: once the response is built, drop the request's references to itself.

    Without this every request (its body included) is cyclic garbage, freed only when the
    cyclic GC reaches the generation it was promoted to; requests promoted to the oldest one
    wait for a rare full collection while the heap grows (live selfies at 25 req/s: about
    2.7 MB a minute per worker). Freed by reference counting, the memory is reused at once.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            for name in SELF_REFERENCES:
                request.__dict__.pop(name, None)


class HeadWithoutBodyMiddleware:
    """A HEAD answered without its body, its headers (``Content-Length`` as CommonMiddleware set
    it for the GET, the Content-Security-Policy decided from the body) kept: outside both.

    Django builds a HEAD's answer as its GET's, body included, and leaves dropping it to the
    server; gunicorn drops it with a WARNING ("WSGI app sent body bytes on a no-body
    response") per answer: two records for each HEAD probe of /status_check, where the logs
    hold one line per request. A streamed answer (a static file) is WhiteNoise's, which sends
    none for a HEAD."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method == "HEAD" and not response.streaming:
            response.content = b""
        return response


class RequestIdMiddleware:
    """Every response carries ``X-Request-ID``: the caller's when sane, else a new one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        set_request_id(request, request_id_for(request))
        response = self.get_response(request)
        response[HEADER] = request_id_of(request)
        return response


def host_allowed(request: HttpRequest) -> bool:
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


def endpoint_of(request: HttpRequest) -> str:
    """A bounded label: the URL's name (admin pages grouped), ``static``,
    ``host_not_allowed``, or ``unmatched``."""
    match = request.resolver_match
    if match is None:
        # WhiteNoise answers static files before any URL is resolved.
        static = "/" + settings.STATIC_URL.lstrip("/")
        if request.path.startswith(static):
            return "static"
        # Refused before any URL is resolved: a stale ALLOWED_HOSTS turned every /liveness
        # into "unmatched" 400s, which read as clients calling unknown URLs.
        return "unmatched" if host_allowed(request) else "host_not_allowed"
    if match.app_name == "admin" or match.namespace == "admin":
        return "admin"
    return match.url_name or match.route or "unmatched"


class ObservabilityMiddleware:
    """Goes right after RequestIdMiddleware, which sets the request's id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Cleared on request_finished (forget_request_id), so that Django's own log line for a
        # 4xx/5xx, written after the middleware returns, still carries the id.
        current_request_id.set(request_id_of(request) or None)
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        endpoint = endpoint_of(request)
        metrics.observe_request(endpoint, request.method or "", response.status_code, seconds)
        # The path only, a secret a client put in it redacted: never the query string,
        # headers or body.
        path = redact_tokens(request.path)
        log.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
        return response
