"""``json_body``: size-check and parse a JSON object body before the view runs."""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from liveness.responses import error

View = Callable[..., HttpResponse]
NOT_AN_OBJECT = "Request body must be a JSON object."


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _too_large() -> HttpResponse:
    limit = settings.LIVENESS_MAX_BODY_BYTES
    return error(f"Request body is too large (limit {limit} bytes).", 413)


def json_body(view: View) -> View:
    """Set ``request.payload`` to the parsed JSON object, or answer 413 / 400."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Refuse before reading: a huge body is never pulled into memory.
        if _declared_length(request) > settings.LIVENESS_MAX_BODY_BYTES:
            return _too_large()
        try:
            body = request.body
        except RequestDataTooBig:
            return _too_large()
        try:
            payload = json.loads(body)
        except ValueError:  # includes JSONDecodeError and UnicodeDecodeError
            return error(f"Malformed JSON. {NOT_AN_OBJECT}", 400)
        if not isinstance(payload, dict):
            return error(NOT_AN_OBJECT, 400)
        request.payload = payload  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
