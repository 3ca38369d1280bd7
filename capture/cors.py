"""CORS for the browser's token calls, so a page on the integrator's own origin can use them.

Only ``quality``, ``challenge`` and ``selfie`` (bearer token, no cookies) answer cross-origin,
and only to origins listed in ``CAPTURE_ALLOWED_ORIGINS`` (``*`` for any). The hash_id calls
never do.
"""

import copy
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework.request import Request
from rest_framework.response import Response

from liveness.jsonapi import JsonAPIView
from liveness.schema import CORS_ORIGIN, Schema

ALLOW_METHODS = "POST"
ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE_S = 600


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

    def options(  # type: ignore[override]  # DRF's stubs say Response; the preflight is a 204
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """The preflight: POST with Authorization and Content-Type, cached 10 minutes. Any
        other OPTIONS is answered 405 as /liveness answers it (never DRF's metadata)."""
        meta = request.META
        if not (meta.get("HTTP_ORIGIN") and meta.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
            return self.http_method_not_allowed(request, *args, **kwargs)
        response = HttpResponse(status=204)
        del response["Content-Type"]  # no body to type: Django's default said text/html
        if allowed_origin(request):
            response["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response["Access-Control-Max-Age"] = str(MAX_AGE_S)
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


# --- the preflight in the OpenAPI schema (drf-spectacular leaves OPTIONS out) ---------------

PREFLIGHT_HEADERS: Schema = {
    "Access-Control-Allow-Origin": CORS_ORIGIN,
    **{
        name: {
            "description": f"`{value}` when the origin is in `CAPTURE_ALLOWED_ORIGINS`; absent "
            "otherwise (the browser then refuses the call).",
            "schema": {"type": kind, "enum": [value]},
        }
        for name, value, kind in (
            ("Access-Control-Allow-Methods", ALLOW_METHODS, "string"),
            ("Access-Control-Allow-Headers", ALLOW_HEADERS, "string"),
            ("Access-Control-Max-Age", MAX_AGE_S, "integer"),
        )
    },
}
# Both required: without either the OPTIONS is no preflight (405). Declared optional, a request
# the schema calls valid (an Origin alone) would be refused.
PREFLIGHT_REQUEST = [
    {
        "in": "header",
        "name": name,
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": f"{what} (a browser sends it; without it the answer is 405).",
    }
    for name, what in (
        ("Origin", "The calling page's origin"),
        ("Access-Control-Request-Method", "`POST`"),
    )
]


def preflight(post: Schema) -> Schema:
    """The OPTIONS operation of a token call whose POST is ``post``: 204, or 405 (no
    preflight) and 503 as the POST answers them, and the URL resolver's 404 for an id that is
    not a UUID."""
    path_parameters = [p for p in post.get("parameters", []) if p["in"] == "path"]
    responses = {
        "204": {"description": "The preflight's answer, no body.", "headers": PREFLIGHT_HEADERS},
        "404": {**post["responses"]["404"], "description": "A session id that is not a UUID."},
        "405": {**post["responses"]["405"], "description": "An OPTIONS that is no preflight."},
        "503": post["responses"]["503"],
    }
    responses = copy.deepcopy(responses)
    for response in responses.values():
        response.setdefault("headers", {})["Access-Control-Allow-Origin"] = CORS_ORIGIN
    return {
        "operationId": f"{post['operationId']}_preflight",
        "summary": "CORS preflight of the POST",
        "description": "What a browser asks before the POST from a page on another origin. "
        f"Answers are cached {MAX_AGE_S // 60} minutes.",
        "tags": post.get("tags", []),
        "security": [{}],
        "parameters": copy.deepcopy(path_parameters) + copy.deepcopy(PREFLIGHT_REQUEST),
        "responses": responses,
    }


def declare_preflights(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """drf-spectacular POSTPROCESSING_HOOKS entry, before liveness.schema.postprocess (which
    adds the headers every answer shares): an OPTIONS operation beside each token call's POST
    (the session token's security, as liveness.schema marks the CORS answers)."""
    for operations in result["paths"].values():
        post = operations.get("post")
        if post and {"sessionToken": []} in post.get("security", []):
            operations["options"] = preflight(post)
    return result
