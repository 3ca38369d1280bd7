"""The request body: read bounded by size, parsed as one JSON object (``authorize`` calls these).
A body that is too large or not one JSON object ends the request with a ``Rejected``."""

import json
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from liveness.outcomes import Rejected, Rejection

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


def read_body(request: HttpRequest, limit: int | None = None) -> bytes:
    """The request body, rejected (413) before it grows past ``limit`` (default
    ``LIVENESS_MAX_BODY_BYTES``), whatever the transfer encoding.

    With a Content-Length the check happens before a byte is read (and no more than it is
    read). A chunked body has no length (Django would see an empty body), so it is read from
    the WSGI stream, bounded by bytes read.
    """
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


def _text(body: bytes) -> str | bytes:
    """``body`` as text when it is strict UTF-8 without a BOM (every real client's body):
    json.loads decodes bytes with the surrogatepass handler, which has no fast path: 5.9 ms of
    a phone photo's 4.4 MB body against 0.2 ms for a strict decode. Anything else is left to
    json.loads as it is (UTF-16/32, a BOM, lone surrogates), so every body parses as before."""
    if json.detect_encoding(body) == "utf-8":
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return body


def parse_object(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; Rejected (400) saying why not."""
    try:
        payload = json.loads(_text(body), object_pairs_hook=_unique_keys)
    except DuplicateKey as exc:
        # Two parsers may pick different copies of a repeated key: refuse the ambiguity.
        key = json.dumps(exc.key[:64])
        raise Rejected(Rejection("duplicate_key", {"key": key})) from None
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise Rejected(Rejection("malformed_json")) from None
    if not isinstance(payload, dict):
        raise Rejected(Rejection("not_an_object"))
    return payload
