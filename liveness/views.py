"""POST /liveness and GET /status_check: the contract's two endpoints, on the JSON edge every
API view shares (liveness.jsonapi: the body, ``admit``, the errors)."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from liveness import answers, idempotency, runtime
from liveness.checks import check_selfie
from liveness.jsonapi import (
    JsonAPIView,
    Quota,
    admit,
    authenticate,
    parse_object,
    read_body,
    safe_methods_only,
    within_quota,
    within_rate,
)
from liveness.schema import (
    CONTENT_CODED,
    KEY_IN_USE,
    TOO_MANY,
    UNPROCESSABLE,
    ErrorSerializer,
    LivenessRequestSerializer,
    LivenessResponseSerializer,
    MessageSerializer,
)
from telemetry.middleware import request_id_of

LIVENESS_RESPONSES = {
    201: LivenessResponseSerializer,
    400: OpenApiResponse(ErrorSerializer, description="Missing, malformed or corrupt input."),
    401: OpenApiResponse(MessageSerializer, description="Unknown, revoked or missing hash_id."),
    405: OpenApiResponse(ErrorSerializer, description="Only POST is allowed."),
    413: OpenApiResponse(ErrorSerializer, description="Request body too large."),
    415: CONTENT_CODED,
    409: KEY_IN_USE,
    422: UNPROCESSABLE,
    429: TOO_MANY,
    503: OpenApiResponse(
        ErrorSerializer,
        description="The database cannot record the check (`Retry-After: 1`); outside "
        "gunicorn also models missing or broken.",
    ),
}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # What liveness.idempotency.key_of takes, as the value reaches it (HTTP strips the
    # whitespace around a header's value): with only "string", a client generated from the
    # schema (or schemathesis) would send keys the service answers 400.
    # A comma (0x2c) is left out of the ranges: two keys reach the view joined by one.
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": r"^[!-+\--~](?:[ -+\--~]*[!-+\--~])?$",
    },
    OpenApiParameter.HEADER,
    required=False,
    description="Optional, 1-255 printable ASCII characters but the comma, sent once (else "
    "400), unique per check (a "
    "UUID). A retry with the same key and the same body within IDEMPOTENCY_KEY_TTL_S (24 h) "
    "gets the first answer again if it was a 201 or a quality gate's 422, with "
    "`Idempotent-Replayed: true`, spending no unit; 422 `idempotency_key_reused` if the body "
    "differs; 409 `idempotency_key_in_use` (`Retry-After`) while the first is being judged. "
    "Any other answer is not kept: the retry is judged afresh.",
)


class LivenessView(JsonAPIView):
    """POST /liveness."""

    records_a_check = True
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
            "refused by a quality gate (422) uses none.\n\n"
            "With an `Idempotency-Key`, a retry of a request already answered 201 or 422 "
            "gets that answer again (`Idempotent-Replayed: true`), spending no unit; see "
            "the header's description."
        ),
        parameters=[IDEMPOTENCY_KEY],
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
        """The body (413, 400), the Idempotency-Key (400), then ``admit`` (400, 429, 401,
        429), then the check; with a key, its earlier answer comes before the quota."""
        body = read_body(request)
        payload = parse_object(body)
        if idempotency.HEADER not in request.META:  # the contract's path, not a line more
            tenant = admit(request, payload.get("hash_id"), Quota.CHECK)
            selfie = payload.get("selfie_image")
            return answers.respond(check_selfie(tenant, selfie, request_id_of(request)))
        return self.once(request, payload, idempotency.key_of(request), body)

    def once(
        self, request: Request, payload: dict[str, Any], key: str, body: bytes
    ) -> HttpResponse:
        """The check of a request with an Idempotency-Key (liveness.idempotency): the key's
        earlier answer (422, 409) once the tenant and its rate admit it, before its quota
        (the retry of the check that took the last unit gets that check's answer)."""
        tenant = authenticate(request, payload.get("hash_id"))
        within_rate(tenant)
        attempt = idempotency.Attempt(tenant, idempotency.Key.of(key, body))
        if (earlier := attempt.earlier_answer()) is not None:
            return earlier
        within_quota(tenant, Quota.CHECK)
        selfie, request_id = payload.get("selfie_image"), request_id_of(request)
        with attempt.claimed() as keep:
            outcome = check_selfie(tenant, selfie, request_id, keep)
        return attempt.answer(outcome)


@csrf_exempt  # else CSRF answers another method 403 (HTML) before our 405
@safe_methods_only
def status_check(request: HttpRequest) -> HttpResponse:
    """200 ``Service is live`` once this process's engine is warm and it can record a check."""
    reason = runtime.not_ready_reason()
    if reason is not None:
        response = HttpResponse(reason, status=503, content_type="text/plain")
        response["Retry-After"] = "1"
        return response
    return HttpResponse(runtime.SERVICE_LIVE, content_type="text/plain")


@csrf_exempt
@safe_methods_only
def healthz(request: HttpRequest) -> HttpResponse:
    """200 ``Process is live`` once this process's engine is warm; no database (under
    gunicorn the worker answers it itself, facia_site.worker, without waiting for Django)."""
    reason = runtime.process_problem()
    if reason is not None:
        response = HttpResponse(reason, status=503, content_type="text/plain")
        response["Retry-After"] = "1"
        return response
    return HttpResponse(runtime.PROCESS_LIVE, content_type="text/plain")
