"""Per request: the request id in every log line, one JSON access line, request metrics."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from telemetry import metrics
from telemetry.logs import current_request_id, request_id_of

log = logging.getLogger("facia.request")


def endpoint_of(request: HttpRequest) -> str:
    """A bounded label: the URL's name (admin pages grouped), ``static``, or ``unmatched``."""
    match = request.resolver_match
    if match is None:
        # WhiteNoise answers static files before any URL is resolved.
        static = "/" + settings.STATIC_URL.lstrip("/")
        return "static" if request.path.startswith(static) else "unmatched"
    if match.app_name == "admin" or match.namespace == "admin":
        return "admin"
    return match.url_name or match.route or "unmatched"


class ObservabilityMiddleware:
    """Goes right after RequestIdMiddleware, which sets ``request.request_id``."""

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
        # The path only: never the query string, headers or body.
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
        return response
