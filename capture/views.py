"""The sessions API: POST /sessions, POST /sessions/{id}/quality, /challenge and /selfie,
GET /sessions/{id}."""

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework.request import Request

from accounts.models import HashId, digest_of
from capture import serializers as s
from capture import service
from capture.cors import TokenCorsMixin
from capture.models import CaptureSession
from capture.tokens import session_for_token
from liveness.answers import Rejected, Rejection
from liveness.jsonapi import JsonAPIView, Quota, admit, parse_object, read_body, within_quota
from liveness.schema import (
    CONTENT_CODED,
    TOO_MANY,
    ErrorSerializer,
    MessageSerializer,
    QualityGateSerializer,
)
from telemetry.middleware import request_id_of

# drf-spectacular's hints say Sequence[str]; it also takes these security requirements.
BEARER: Any = [{"sessionToken": []}]
HASH_ID_HEADER: Any = [{"hashIdHeader": []}]
TOKEN_401 = OpenApiResponse(
    s.TokenErrorSerializer,
    description="Token missing, invalid, "
    "of another session or tenant, or expired (`code` says which).",
)
NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="Unknown session id, or an id that is not a UUID."
)
BAD_INPUT = OpenApiResponse(ErrorSerializer, description="Malformed JSON or image.")


def bad_frame(width: int, height: int, also: str = "") -> OpenApiResponse:
    """The 400 of a session call that decodes at most ``width`` x ``height`` pixels (and 4
    JPEG scans, capture.service): a valid file over a bound says which, with its ``code``;
    ``also``: the call's own 400s, a sentence."""
    return OpenApiResponse(
        ErrorSerializer,
        description="Malformed JSON or image; a JPEG of more than 4 scans with `code` "
        "`image_too_many_scans` (send a baseline JPEG or a PNG); an image of more than "
        f"{width * height:,} pixels ({width}x{height}) with `code` `image_too_many_pixels` "
        f"(send it scaled down).{also}",
    )


NOT_READY = OpenApiResponse(ErrorSerializer, description="Models or database not usable.")
NOT_ALLOWED = OpenApiResponse(ErrorSerializer, description="Another method.")
TOO_LARGE = OpenApiResponse(ErrorSerializer, description="Over LIVENESS_MAX_BODY_BYTES.")
QUALITY_TOO_LARGE = OpenApiResponse(ErrorSerializer, description="Over SESSION_QUALITY_MAX_BYTES.")
BAD_HASH_ID = OpenApiResponse(MessageSerializer, description="Invalid hash_id.")
TOKEN_TOO_MANY = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="SessionTooManyRequests",
        serializers=[MessageSerializer, ErrorSerializer, s.CallsSpentSerializer],
        resource_type_field_name=None,
    ),
    description='`{"message": "Your request limit has been reached."}` when the tenant\'s '
    'request limit is reached (no `Retry-After`); `{"error": ...}` with `Retry-After` when a '
    "throttle refused it (failed authentications from this IP, or the session's own rate), "
    "with `code` `session_calls_spent` once the session has made its `SESSION_CALL_BUDGET` "
    "calls (`Retry-After`: until it expires). Never the tenant's rate limit.",
)


Action = Callable[[CaptureSession, dict[str, object], str], dict[str, object]]
OwnRate = Callable[[CaptureSession], None]
Parse = Callable[[bytes], dict[str, object]]


def object_or_none(body: bytes) -> dict[str, object]:
    """A body that may be absent (Content-Length 0 or none, or an empty chunked body): none is
    {}; one present must be a JSON object. The challenge's body is ignored, and a generated
    client sends none where the schema's body is optional."""
    return parse_object(body) if body else {}


def with_session(
    action: Action,
    own_rate: OwnRate,
    max_bytes: Callable[[], int],
    asks: Quota,
    status: int,
    parse: Parse = parse_object,
) -> Callable[..., HttpResponse]:
    """A token-authenticated call on one session. In order, before its JSON is parsed or an
    image decoded: the body read, bounded by ``max_bytes()`` (a setting's value, read per call)
    whatever the transfer encoding (413); the token, its session and the hash_id that opened
    it (429 / 404 / 401); the session still open (409); the session's own rate and budget
    (429), then the tenant's quota (429, counted as /liveness's is; a held selfie's session has
    paid its unit, so its challenge's calls ask no room). Not the tenant's rate limit: the
    backend's POST /sessions counted against it, and one token's calls counted against it
    left every other user of the tenant refused. Then the body is parsed by ``parse`` (400)."""

    def call(request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
        body = read_body(request, max_bytes())
        session = session_for_token(request, session_id)
        service.require_open(session)
        own_rate(session)
        service.within_budget(session)
        within_quota(session.tenant, Quota.NONE if session.held else asks)
        answer = action(session, parse(body), request_id_of(request))
        return JsonResponse(answer, status=status)

    return call


def quality_max_bytes() -> int:
    return settings.SESSION_QUALITY_MAX_BYTES


def selfie_max_bytes() -> int:
    return settings.LIVENESS_MAX_BODY_BYTES


quality_call = with_session(
    service.check_quality, service.within_quality_rate, quality_max_bytes, Quota.ROOM, 200
)
challenge_call = with_session(
    service.restart_challenge,
    service.within_quality_rate,
    quality_max_bytes,
    Quota.ROOM,
    200,
    parse=object_or_none,
)
selfie_call = with_session(
    service.take_selfie, service.within_selfie_rate, selfie_max_bytes, Quota.CHECK, 202
)


class SessionsView(JsonAPIView):
    http_method_names = ["post"]  # not DRF's OPTIONS metadata, as /liveness

    @extend_schema(
        operation_id="session_create",
        summary="Open a capture session (backend call, with the tenant's hash_id)",
        request={"application/json": s.SessionCreateRequestSerializer},
        responses={
            201: s.SessionCreatedSerializer,
            400: BAD_INPUT,
            401: BAD_HASH_ID,
            405: NOT_ALLOWED,
            413: TOO_LARGE,
            415: CONTENT_CODED,
            429: TOO_MANY,
            503: NOT_READY,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        """The body, then ``admit`` as /liveness's (a tenant at its limit opens nothing)."""
        hash_id = parse_object(read_body(request)).get("hash_id")
        tenant = admit(request, hash_id, Quota.ROOM)
        credential = HashId.objects.active().filter(digest=digest_of(str(hash_id))).first()
        if credential is None:  # revoked since admit read it
            raise Rejected(Rejection("invalid_credentials"))
        opened = service.open_session(tenant, credential)
        body = {
            "session_id": str(opened.session.pk),
            "token": opened.token,
            "expires_at": service.iso(opened.session.expires_at),
            "expires_in": settings.SESSION_TTL_S,
        }
        return JsonResponse(body, status=201)


def challenge_conflict(call: str, refused: type[Any]) -> OpenApiResponse:
    """409: the session done or busy, or its head-turn challenge refusing ``call`` with one of
    the codes ``refused`` lists (each call has its own)."""
    return OpenApiResponse(
        PolymorphicProxySerializer(
            component_name=f"SessionOr{call}Conflict",
            serializers=[s.ConflictSerializer, refused],
            resource_type_field_name=None,
        ),
        description="The session has its verdict (`state` done) or a selfie of it is being "
        "judged (`state` processing), or its head-turn challenge refuses this call (`code`).",
    )


class QualityView(TokenCorsMixin, JsonAPIView):
    http_method_names = ["post", "options"]  # OPTIONS: the CORS preflight only

    @extend_schema(
        operation_id="session_quality",
        summary="Quality gates on a small frame (browser call; no classifier, no quota)",
        description="Every gate of /liveness, `face_too_close` included whatever the "
        "tenant's crop policy. Rate-limited per session (`SESSION_QUALITY_PER_S`, and "
        "`SESSION_CALL_BUDGET` token calls in its life), not by the tenant's rate limit; "
        "refused (429) once the tenant is at its request limit.",
        request={"application/json": s.FrameRequestSerializer},
        responses={
            200: s.QualityResultSerializer,
            400: bad_frame(*service.QUALITY_SIZE, " A `more_time` that is not `true` or `false`."),
            401: TOKEN_401,
            404: NOT_FOUND,
            405: NOT_ALLOWED,
            409: challenge_conflict("Quality", s.QualityRefusedSerializer),
            413: QUALITY_TOO_LARGE,
            415: CONTENT_CODED,
            429: TOKEN_TOO_MANY,
            503: NOT_READY,
        },
        auth=BEARER,
    )
    def post(self, request: Request, session_id: uuid.UUID) -> HttpResponse:
        return quality_call(request, session_id)


class ChallengeView(TokenCorsMixin, JsonAPIView):
    http_method_names = ["post", "options"]  # OPTIONS: the CORS preflight only

    @extend_schema(
        operation_id="session_challenge",
        summary="Start a new head-turn challenge (browser call: the retry after a failure)",
        description="A head_turn tenant's sessions, and a when_unsure session whose selfie is "
        "held, only. The server draws new random steps "
        "(the body, optional, is ignored: nothing the browser sends chooses them) and answers "
        "the first; "
        "the session's first quality frame starts the first challenge by itself. At most "
        "`CAPTURE_CHALLENGE_TRIES` challenges per session; none once one has passed.",
        request={"application/json": s.CHALLENGE_START_REQUEST},
        responses={
            200: s.ChallengeStartedSerializer,
            400: BAD_INPUT,
            401: TOKEN_401,
            404: NOT_FOUND,
            405: NOT_ALLOWED,
            409: challenge_conflict("Restart", s.RestartRefusedSerializer),
            413: QUALITY_TOO_LARGE,
            415: CONTENT_CODED,
            429: TOKEN_TOO_MANY,
            503: NOT_READY,
        },
        auth=BEARER,
    )
    def post(self, request: Request, session_id: uuid.UUID) -> HttpResponse:
        return challenge_call(request, session_id)


class SelfieView(TokenCorsMixin, JsonAPIView):
    records_a_check = True
    http_method_names = ["post", "options"]  # OPTIONS: the CORS preflight only

    @extend_schema(
        operation_id="session_selfie",
        summary="Send the capture (browser call): the whole check, one unit of quota",
        description="Answers 202 without the verdict; the backend reads it with "
        "GET /sessions/{id}. A gate refusal (422) leaves the session open for another try; "
        "selfies are rate-limited per session (`SESSION_SELFIE_PER_MIN`). A head_turn "
        "tenant's session refuses the selfie (409 `challenge_not_passed` or "
        "`challenge_failed`, `challenge_tries_exhausted` once no try is left) until its "
        "challenge has passed. A when_unsure tenant's selfie "
        "scored within its band is held: the 202 carries `challenge` (pending), the challenge "
        "then decides the verdict, and a second selfie is refused (409 `selfie_held`).",
        request={"application/json": s.SelfieRequestSerializer},
        responses={
            202: s.SelfieReceivedSerializer,
            400: bad_frame(*service.SELFIE_SIZE),
            401: TOKEN_401,
            404: NOT_FOUND,
            405: NOT_ALLOWED,
            409: challenge_conflict("Selfie", s.SelfieRefusedSerializer),
            413: TOO_LARGE,
            415: CONTENT_CODED,
            422: OpenApiResponse(QualityGateSerializer, description="A gate refused it."),
            429: TOKEN_TOO_MANY,
            503: NOT_READY,
        },
        auth=BEARER,
    )
    def post(self, request: Request, session_id: uuid.UUID) -> HttpResponse:
        return selfie_call(request, session_id)


class SessionView(JsonAPIView):
    http_method_names = ["get", "head"]  # not DRF's OPTIONS metadata, as /liveness

    @extend_schema(
        operation_id="session_read",
        summary="The session's state and verdict (backend call, hash_id in X-Hash-Id)",
        description="HEAD answers as GET, without the body.",
        parameters=[
            OpenApiParameter(
                "X-Hash-Id",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="The tenant's hash_id.",
            )
        ],
        responses={
            200: s.SessionStateSerializer,
            401: BAD_HASH_ID,
            404: OpenApiResponse(
                ErrorSerializer,
                description="No such session of this tenant, or an id that is not a UUID.",
            ),
            405: NOT_ALLOWED,
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many failed hash_ids from this IP, or the tenant's rate "
                "(`rate_limit_per_minute`: every call counts).",
            ),
            503: NOT_READY,
        },
        auth=HASH_ID_HEADER,
    )
    def get(self, request: Request, session_id: uuid.UUID) -> HttpResponse:
        # The hash_id comes in a header, never the URL: proxies log URLs.
        tenant = admit(request, request.META.get("HTTP_X_HASH_ID", ""), Quota.NONE)
        found = CaptureSession.objects.filter(pk=session_id, tenant=tenant).first()
        if found is None:
            raise Rejected(Rejection("unknown_session"))
        return JsonResponse(service.describe(found))
