"""HTTP edge: POST /liveness, GET /status_check, JSON 400/404/500."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from liveness import health, responses
from liveness.admission import Quota, admit
from liveness.http import parse_object, read_body
from liveness.outcomes import Rejected, Rejection
from liveness.schema import TOO_MANY
from liveness.serializers import (
    ErrorSerializer,
    LivenessRequestSerializer,
    LivenessResponseSerializer,
    MessageSerializer,
    RefusalSerializer,
)
from liveness.service import check_selfie
from telemetry.logs import request_id_of

log = logging.getLogger(__name__)

LIVENESS_RESPONSES = {
    201: LivenessResponseSerializer,
    400: OpenApiResponse(ErrorSerializer, description="Missing, malformed or corrupt input."),
    401: OpenApiResponse(MessageSerializer, description="Unknown, revoked or missing hash_id."),
    405: OpenApiResponse(ErrorSerializer, description="Only POST is allowed."),
    413: OpenApiResponse(ErrorSerializer, description="Request body too large."),
    422: OpenApiResponse(
        RefusalSerializer, description="No usable face, or a quality gate refused it."
    ),
    429: TOO_MANY,
    503: OpenApiResponse(
        ErrorSerializer,
        description="The database cannot record the check (`Retry-After: 1`); outside "
        "gunicorn also models missing or broken.",
    ),
}


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

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # DRF's cycles (view -> Request -> parser_context -> view and Request) would keep
            # the request and its body until the cyclic GC (facia_site.middleware explains).
            drf_request = self.__dict__.get("request")
            if isinstance(drf_request, Request):
                drf_request.parser_context = {}
            self.__dict__.clear()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if health.database_held_down():
            raise DatabaseHeldDown  # answered 503 at once (liveness.health.DOWN_HOLD_S)
        super().initial(request, *args, **kwargs)

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # Always JSON, whatever the Accept header says (no 406).
        return JSONRenderer(), JSONRenderer.media_type

    # DRF's stubs say Response; a plain JsonResponse is what DRF's finalize_response accepts too.
    def http_method_not_allowed(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = responses.respond(Rejection("method_not_allowed", {"method": request.method}))
        response["Allow"] = ", ".join(self.allowed_methods)
        return response

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        if isinstance(exc, Rejected):
            return responses.respond(exc.rejection)
        if isinstance(exc, APIException):
            return responses.error(str(exc.detail), exc.status_code)
        if isinstance(exc, DatabaseHeldDown):
            return responses.respond(Rejection("not_ready", retry_after=1))
        if isinstance(exc, DatabaseError):
            # Database down, hung or restarting: nothing was committed, the client may retry.
            log.error("database error: %s", exc)
            health.database_failed(exc)  # /status_check probes, or says so at once
            return responses.respond(Rejection("not_ready", retry_after=1))
        return super().handle_exception(exc)


class LivenessView(JsonAPIView):
    """POST /liveness."""

    http_method_names = ["post"]  # not DRF's OPTIONS metadata: the contract allows POST only

    @extend_schema(
        operation_id="liveness_check",
        summary="Judge whether a selfie shows a live face",
        description=(
            "Authenticates `hash_id` (401; 429 `error` + `Retry-After` for an IP with too many "
            "failures or a tenant over its rate), refuses a tenant already at its limit (429 "
            "`message`) before reading `selfie_image`, decodes it (400), runs the engine, and "
            "only then takes one unit of quota, in the transaction that records the check "
            "(429 `message` if the limit was reached meanwhile; nothing written). A face "
            "refused by a quality gate (422) uses none."
        ),
        request={"application/json": LivenessRequestSerializer},
        responses=LIVENESS_RESPONSES,
        examples=[
            OpenApiExample(
                "Live",
                value={
                    "liveness_result": {"is_live": 1, "liveness_score": 0.9862353},
                    "message": "Success",
                },
                response_only=True,
                status_codes=["201"],
            )
        ],
    )
    def post(self, request: Request) -> HttpResponse:
        """The body (413, 400), then ``admit`` (400, 429, 401, 429), then the check."""
        payload = parse_object(read_body(request))
        tenant = admit(request, payload.get("hash_id"), Quota.CHECK)
        selfie = payload.get("selfie_image")
        return responses.respond(check_selfie(tenant, selfie, request_id_of(request)))


@require_safe
def status_check(request: HttpRequest) -> HttpResponse:
    """200 ``Service is live`` once this process's engine is warm and it can record a check."""
    reason = health.not_ready_reason()
    if reason is not None:
        response = HttpResponse(reason, status=503, content_type="text/plain")
        response["Retry-After"] = "1"
        return response
    return HttpResponse("Service is live", content_type="text/plain")


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith(f"/{settings.ADMIN_URL}")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_admin(request):
        return page_not_found(request, exception)
    return responses.respond(Rejection("not_found"))


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a Host not in ALLOWED_HOSTS, or another SuspiciousOperation): its HTML
    page for the admin, JSON for every API path, naming the Host when that is the cause."""
    if _is_admin(request):
        return django_bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        host = request.META.get("HTTP_HOST", request.META.get("SERVER_NAME", ""))[:100]
        return responses.respond(Rejection("host_not_allowed", {"host": repr(host)}))
    return responses.respond(Rejection("bad_request"))


def server_error(request: HttpRequest) -> HttpResponse:
    return responses.respond(Rejection("server_error"))
