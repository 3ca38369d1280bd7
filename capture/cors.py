"""CORS for the browser's token calls, so a page on the integrator's own origin can use them.

Only ``quality``, ``challenge`` and ``selfie`` (bearer token, no cookies) answer cross-origin,
and only to origins listed in ``CAPTURE_ALLOWED_ORIGINS`` (``*`` for any). The hash_id calls
never do.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework.request import Request
from rest_framework.response import Response

from liveness.views import JsonAPIView


def allowed_origin(request: HttpRequest | Request) -> str | None:
    origin = request.META.get("HTTP_ORIGIN")
    allowed = settings.CAPTURE_ALLOWED_ORIGINS
    if not origin:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


class TokenCorsMixin(JsonAPIView):
    """Put first in a session view's bases: the preflight, and the CORS headers on answers."""

    # DRF's stubs say Response; a plain 204 is what the preflight answers.
    def options(  # type: ignore[override]
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """The preflight: POST with Authorization and Content-Type, cached 10 minutes. Any
        other OPTIONS is answered 405 as /liveness answers it (never DRF's metadata)."""
        meta = request.META
        if not (meta.get("HTTP_ORIGIN") and meta.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
            return self.http_method_not_allowed(request, *args, **kwargs)
        response = HttpResponse(status=204)
        if allowed_origin(request):
            response["Access-Control-Allow-Methods"] = "POST"
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return response

    @property
    def allowed_methods(self) -> list[str]:
        return ["POST"]  # the preflight is CORS's, not a method of the resource

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if origin := allowed_origin(request):
            response["Access-Control-Allow-Origin"] = origin
            # A page reads how long to wait, and the id that finds its request in our logs.
            response["Access-Control-Expose-Headers"] = "Retry-After, X-Request-ID"
        patch_vary_headers(response, ["Origin"])
        return response
