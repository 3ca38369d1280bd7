"""``json_body``: size-check and parse a JSON object body before the view runs."""

import json
from collections.abc import Callable
from functools import wraps
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from liveness.responses import error

View = Callable[..., HttpResponseBase]
NOT_AN_OBJECT = "Request body must be a JSON object."
READ_CHUNK = 64 * 1024


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


def read_body(request: HttpRequest) -> bytes:
    """The request body, refused (BodyTooLarge) before it grows past the limit.

    With a Content-Length the check happens before a byte is read. A chunked body has no
    length (Django would see an empty body), so it is read from the WSGI stream, bounded.
    """
    limit = settings.LIVENESS_MAX_BODY_BYTES
    if _declared_length(request) > limit:
        raise BodyTooLarge
    if _is_chunked(request):
        return read_bounded(request.META["wsgi.input"], limit)
    try:
        return request.body
    except RequestDataTooBig as exc:
        raise BodyTooLarge from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def parse_object(body: bytes) -> dict[str, Any] | HttpResponse:
    """The JSON object in ``body``, or a 400 response saying why not."""
    try:
        payload = json.loads(body, object_pairs_hook=_unique_keys)
    except DuplicateKey as exc:
        # Two parsers may pick different copies of a repeated key: refuse the ambiguity.
        return error(f"Malformed JSON. Duplicate key {json.dumps(exc.key[:64])}.", 400)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        return error(f"Malformed JSON. {NOT_AN_OBJECT}", 400)
    if not isinstance(payload, dict):
        return error(NOT_AN_OBJECT, 400)
    return payload


def _too_large() -> HttpResponse:
    limit = settings.LIVENESS_MAX_BODY_BYTES
    return error(f"Request body is too large (limit {limit} bytes).", 413)


def json_body(view: View) -> View:
    """Set ``request.payload`` to the parsed JSON object, or answer 413 / 400."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            body = read_body(request)
        except BodyTooLarge:
            return _too_large()
        payload = parse_object(body)
        if isinstance(payload, HttpResponse):
            return payload
        request.payload = payload  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
