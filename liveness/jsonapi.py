"""What every JSON endpoint's edge shares, /liveness and the sessions API alike (neither owns
it): the view base ``JsonAPIView`` (our errors, never DRF's; 503 while the database is held
down), the body read bounded by size and parsed as one JSON object (413, 400), ``admit`` for the
hash_id, and Django's JSON 400/404/500 handlers for every API path.

``admit`` is the one gate in front of every endpoint that takes a hash_id (/liveness, POST
/sessions, GET /sessions/{id}). In order:

1. ``hash_id``: 400 unless a string (or absent);
2. the client (IP): 429 while it has failed too often (``guard``);
3. the tenant: 401 unless the hash_id names an active one (``accounts``; the failure counts
   against the client);
4. the tenant's rate limit: 429 over ``rate_limit_per_minute`` (``guard``);
5. its quota as loaded: 429 at its request limit, before any image is read.

Step 5 (``within_quota``) also guards a session's token calls; step 4 does not (the session's
own budget bounds a token: ``capture.service.within_budget``). Each 401 and 429 is
``counted`` (guard.refusals and /metrics): per tenant where the hash_id names one, revoked or
not, else per client address bucket. It is raised as ``Rejected``; the view answers it from
ANSWERS.
"""

import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from enum import Enum
from typing import IO, Any, ClassVar

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.http.response import HttpResponseBase
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import HashId, Tenant
from guard import throttle
from liveness import answers, runtime
from liveness.answers import Rejected, Rejection, counted
from liveness.middleware import database_unavailable
from telemetry import metrics
from telemetry.logs import outage_answer

READ_CHUNK = 64 * 1024
# Keys and values (each string, number, literal, object and array counts one) a body may hold:
# the contract's has 5, a burst of frames 6, the hostile corpus's deepest accepted one 502.
# json.loads of a 15.8 MB object of 1.3 million keys cost 1.6 s and +285 MB, of a 16 MB
# [{},{},...] +175 MB; counting stops after this many tokens (0.5 ms whatever the body).
MAX_JSON_ITEMS = 1024
# What is counted outside strings: an opening bracket, a string's opening quote, or a run of
# other non-structural characters (a number or literal; junk counts too).
_ITEM = re.compile(r'[{\[]|"|[^ \t\n\r{}\[\]:,"]++')
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)


class BodyTooLarge(Exception):
    pass


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_chunked(request: HttpRequest) -> bool:
    meta = request.META
    return (
        not meta.get("CONTENT_LENGTH")
        and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    )


def read_bounded(stream: IO[bytes], limit: int) -> bytes:
    """Read ``stream`` to its end, but never more than ``limit`` bytes into memory."""
    parts: list[bytes] = []
    size = 0
    while chunk := stream.read(min(READ_CHUNK, limit + 1 - size)):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
    return b"".join(parts)


def _content_coded(request: HttpRequest) -> bool:
    """Whether the body is labelled with a content coding (gzip, br...) other than identity.
    The service decodes none, so such a body is refused before it is read: parsed as JSON, a
    compressed body reads as malformed (a 400 that hides the cause), and a plain one under
    the label would be judged against what its client declared (RFC 9110 8.4)."""
    codings = request.META.get("HTTP_CONTENT_ENCODING", "").split(",")
    return any(coding.strip(" \t").lower() not in ("", "identity") for coding in codings)


def read_body(request: HttpRequest, limit: int | None = None) -> bytes:
    """The request body, rejected (415) when it has a content coding, and (413) before it
    grows past ``limit`` (default ``LIVENESS_MAX_BODY_BYTES``), whatever the transfer encoding.

    With a Content-Length the check happens before a byte is read (and no more than it is
    read). A chunked body has no length (Django would see an empty body), so it is read from
    the WSGI stream, bounded by bytes read.
    """
    if _content_coded(request):
        raise Rejected(Rejection("content_coded"))
    limit = settings.LIVENESS_MAX_BODY_BYTES if limit is None else limit
    try:
        if _declared_length(request) > limit:
            raise BodyTooLarge
        if _is_chunked(request):
            return read_bounded(request.META["wsgi.input"], limit)
        try:
            return request.body
        except RequestDataTooBig as exc:
            raise BodyTooLarge from exc
    except BodyTooLarge as exc:
        raise Rejected(Rejection("body_too_large", {"limit": limit})) from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> float:
    raise ValueError(name)


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e999999: a JSON number, but no double holds it
        raise ValueError(literal)
    return value


# RFC 8259 has no NaN or Infinity, which Python's json takes by default, and it reads a number
# beyond a double's range (1e999999) as inf: refused as malformed, as a repeated key is, since a
# WAF or proxy in front reads them otherwise (an error, a string, a 0). parse_float runs only
# for a number with a fraction or exponent (the seed's body has none): json.loads of the seed's
# 124 kB body took 134.6 us with these hooks against 134.0 us without (interleaved, 20 rounds).
STRICT: dict[str, Any] = {
    "object_pairs_hook": _unique_keys,
    "parse_constant": _no_constant,
    "parse_float": _finite,
}


def _text(body: bytes) -> str:
    """``body`` decoded as json.loads decodes bytes (UnicodeDecodeError where it would fail),
    with a fast path for strict UTF-8 without a BOM (every real client's body): the
    surrogatepass handler json.loads uses has none, 5.9 ms of a phone photo's 4.4 MB body
    against 0.2 ms for a strict decode. UTF-16/32, a BOM (the codec drops it) and lone
    surrogates decode as json.loads would, so every body parses as json.loads(bytes) parses it."""
    encoding = json.detect_encoding(body)
    if encoding == "utf-8":
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return body.decode(encoding, "surrogatepass")


def _string_end(text: str, start: int) -> int:
    """Where the string opened at ``start`` ends (after its closing quote); -1 if it does not.
    The first quote closes it unless a backslash precedes it (a base64 image has none, even
    with PHP's escaped slashes): found at memchr speed; otherwise the regex, in C."""
    end = text.find('"', start + 1)
    if end < 0:
        return -1
    if text[end - 1] != "\\":
        return end + 1
    match = _STRING.match(text, start)
    return -1 if match is None else match.end()


def _too_many_items(text: str) -> bool:
    """Whether ``text`` holds more than MAX_JSON_ITEMS keys and values, counted without
    parsing: in bounded time and memory, it stops at the limit. Exact for valid JSON; for
    invalid JSON it never counts past where json.loads would stop (an unterminated string
    ends the count), so a body it lets through costs json.loads at most that many items."""
    count = 0
    position = 0
    while (match := _ITEM.search(text, position)) is not None:
        count += 1
        if count > MAX_JSON_ITEMS:
            return True
        if match.group() == '"':
            position = _string_end(text, match.start())
            if position < 0:
                return False
        else:
            position = match.end()
    return False


def parse_object(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; Rejected (400) saying why not. A body of more keys and
    values than any request of ours has is refused as malformed before it is parsed; NaN,
    Infinity and a number overflowing a double (``STRICT``) are malformed."""
    try:
        text = _text(body)
        if _too_many_items(text):
            raise Rejected(Rejection("malformed_json"))
        payload = json.loads(text, **STRICT)
    except DuplicateKey as exc:
        # Two parsers may pick different copies of a repeated key: refuse the ambiguity.
        key = json.dumps(exc.key[:64])
        raise Rejected(Rejection("duplicate_key", {"key": key})) from None
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, NaN, deep nesting
        raise Rejected(Rejection("malformed_json")) from None
    if not isinstance(payload, dict):
        raise Rejected(Rejection("not_an_object"))
    return payload


class Quota(Enum):
    """What a call asks of the tenant's quota."""

    NONE = "none"  # reads what was already paid for (a session's verdict)
    ROOM = "room"  # needs a unit left (a session, a quality frame)
    CHECK = "check"  # is a check: turned away for quota, it also counts as a refused verdict


def within_rate(tenant: Tenant) -> None:
    """Step 4: the tenant's rate (this request counts against it)."""
    per_minute = tenant.rate_limit_per_minute
    if (over := throttle.tenant_rate_exceeded(tenant.pk, per_minute)) is not None:
        detail = {"per_minute": per_minute}
        raise counted(Rejection("rate_limited", detail, retry_after=over.retry_after()), tenant)


def within_quota(tenant: Tenant, asks: Quota) -> None:
    """Step 5: the tenant's quota as read now (a hint: the unit is taken by the check's own
    transaction)."""
    if asks is not Quota.NONE and not tenant.has_room():
        if asks is Quota.CHECK:
            metrics.observe_rejection(tenant.pk, tenant.name, "quota")
        raise counted(Rejection("limit_reached"), tenant)


def admit(request: HttpRequest, hash_id: object, asks: Quota) -> Tenant:
    """Steps 1-5 above: the tenant ``hash_id`` names; Rejected at the first that fails."""
    tenant = authenticate(request, hash_id)
    within_rate(tenant)
    within_quota(tenant, asks)
    return tenant


def authenticate(request: HttpRequest, hash_id: object) -> Tenant:
    """Steps 1-3 above."""
    if hash_id is not None and not isinstance(hash_id, str):
        raise Rejected(Rejection("hash_id_not_a_string"))
    client = throttle.client_ip(request)
    if (blocked := throttle.auth_blocked(client)) is not None:
        throttled = Rejection("auth_throttled", retry_after=blocked.retry_after())
        raise counted(throttled, None, client)  # the client is throttled, not a tenant
    tenant = HashId.tenant_for(hash_id)
    if tenant is None:
        throttle.auth_failed(client)
        raise counted(Rejection("invalid_credentials"), HashId.owner_of(hash_id), client)
    return tenant


def not_allowed(method: str | None, allowed: Iterable[str]) -> HttpResponse:
    """Our JSON 405 for ``method``, with ``Allow``."""
    response = answers.respond(Rejection("method_not_allowed", {"method": method}))
    response["Allow"] = ", ".join(allowed)
    return response


SAFE = ("GET", "HEAD")
View = Callable[..., HttpResponse]


def safe_methods_only(view: View) -> View:
    """A plain view that answers GET and HEAD; any other method gets our JSON 405 with
    ``Allow``, as every API view does. Django's ``require_safe`` answers POST, PUT,
    DELETE... with an empty text/html 405."""

    @functools.wraps(view)
    def only_safe(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in SAFE:
            return not_allowed(request.method, SAFE)
        return view(request, *args, **kwargs)

    return only_safe


class DatabaseHeldDown(Exception):
    """This worker found the database unusable less than DOWN_HOLD_S ago."""


class JsonAPIView(APIView):
    """What /liveness and the session views share: parsing and errors are ours, so DRF's own
    formats never leak, and the request cycle is broken when the response is built. A
    ``Rejected`` raised anywhere in a call is answered from ANSWERS."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    parser_classes: list[type] = []
    renderer_classes = [JSONRenderer]
    # Whether every POST inserts a check (/liveness, a session's selfie): after a probe that
    # waited out DATABASE_TIMEOUT_S (runtime.probe_waited), its insert would wait as long
    # again for the same lock, so it is answered 503 at once. The other calls read or write
    # other tables, which the lock may not hold.
    records_a_check: ClassVar[bool] = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # DRF's cycles (view -> Request -> parser_context -> view and Request) would keep
            # the request and its body until a full cyclic GC, while the heap grows.
            drf_request = self.__dict__.get("request")
            if isinstance(drf_request, Request):
                drf_request.parser_context = {}
            self.__dict__.clear()

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        # A verdict, a session token or a session's state: no cache on the way keeps a copy.
        response["Cache-Control"] = "no-store"
        return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        inserts = self.records_a_check and request.method == "POST"  # not a CORS preflight
        if runtime.database_held_down() or (inserts and runtime.probe_waited()):
            # answered 503 at once (liveness.runtime.DOWN_HOLD_S, _probe_waited)
            raise DatabaseHeldDown
        super().initial(request, *args, **kwargs)

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # Always JSON, whatever the Accept header says (no 406).
        return JSONRenderer(), JSONRenderer.media_type

    def http_method_not_allowed(  # type: ignore[override]  # DRF's stubs say Response; DRF takes any HttpResponse
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        return not_allowed(request.method, self.allowed_methods)

    def handle_exception(  # type: ignore[override]  # DRF's stubs say Response; DRF takes any HttpResponse
        self, exc: Exception
    ) -> HttpResponse:
        if isinstance(exc, Rejected):
            return answers.respond(exc.rejection)
        if isinstance(exc, APIException):
            return answers.error(str(exc.detail), exc.status_code)
        if isinstance(exc, DatabaseHeldDown):  # the outage is logged: the answer is its line
            outage_answer(self.request)
            return answers.respond(Rejection("not_ready", retry_after=1))
        if isinstance(exc, DatabaseError):  # down, hung or restarting
            return database_unavailable(self.request, exc)
        return super().handle_exception(exc)


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith(f"/{settings.ADMIN_URL}")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The URL resolver's 404 (and any view's Http404): Django's page for the admin, JSON
    with ``Cache-Control: no-store`` for every API path. ``/sessions/not-a-uuid`` is an
    instance of the schema's ``/sessions/{session_id}``, every answer of which declares
    no-store, as JsonAPIView sends it for an unknown well-formed id."""
    if _is_admin(request):
        return page_not_found(request, exception)
    response = answers.respond(Rejection("not_found"))
    response["Cache-Control"] = "no-store"
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a Host not in ALLOWED_HOSTS, or another SuspiciousOperation): its HTML
    page for the admin, JSON for every API path, naming the Host when that is the cause."""
    if _is_admin(request):
        return django_bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        host = request.META.get("HTTP_HOST", request.META.get("SERVER_NAME", ""))[:100]
        # Without its port, as ALLOWED_HOSTS takes it: 'name:5001' read as the entry to add
        # stops the start (an entry with a port never matches).
        domain = split_domain_port(host)[0] or host
        return answers.respond(Rejection("host_not_allowed", {"host": repr(domain)}))
    return answers.respond(Rejection("bad_request"))


def server_error(request: HttpRequest) -> HttpResponse:
    """An unexpected error's 500: with ``Cache-Control: no-store``, as every other answer of
    the API (docs/integrator/api.md: every answer of the endpoints is no-store)."""
    response = answers.respond(Rejection("server_error"))
    response["Cache-Control"] = "no-store"
    return response
