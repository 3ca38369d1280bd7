"""What a request comes to and how it is answered: a verdict (``Judged``) or a ``Rejection``
code, and ``ANSWERS``, every answer but a resource's own body in one table (each code's status
code, body and headers). /liveness's are the contract's; the sessions' are added.
``respond`` builds the response; ``counted`` books a 401 or 429 before it is raised.

A quality gate (``ml.quality``) that cannot judge the image answers 422 with its ``code``,
recorded as the check's ``refused_code``; a *rejection* is any answer other than a verdict,
those 422s included. (guard's daily counts are of 401 and 429 answers only.)
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import JsonResponse

from accounts.models import Tenant
from guard import refusals
from ml.quality import REFUSALS
from telemetry import metrics


@dataclass(frozen=True)
class Rejection:
    code: str  # a key of ANSWERS
    detail: Mapping[str, object] = field(default_factory=dict)  # fills the answer's text
    retry_after: int | None = None  # seconds, for a Retry-After header


class Rejected(Exception):
    """Ends the request early with ``rejection``."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.code)
        self.rejection = rejection


@dataclass(frozen=True)
class Judged:
    is_live: bool
    score: float
    profile: str
    capture: str
    frames: int = 1  # a session's burst judges up to three


Outcome = Judged | Rejection

IMAGE_REQUIRED = "Selfie_image is required and must be a JPEG, JPG or PNG."
IMAGE_INVALID = "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."
# A capture session's bound on decoding cost (capture.service), not a fault of the file:
# "Invalid or corrupt" would send a phone's valid progressive JPEG (10 scans) to look for damage.
IMAGE_TOO_MANY_SCANS = (
    "This progressive JPEG has more than {limit} scans, the most a session call decodes; send "
    "a baseline JPEG or a PNG."
)
# The same for a session's bound on pixels (a 16 MP phone photo, 4608x3456, over 4096x3072).
IMAGE_TOO_MANY_PIXELS = (
    "This image is {width}x{height} ({pixels:,} pixels), more than the {limit:,} pixels a "
    "session call decodes; send it scaled down to at most {limit:,} pixels."
)
# A session's own budget of token calls (capture.service.within_budget); an `error`, as the
# other rates', so the component waits (Retry-After: until the session expires), then starts anew.
SESSION_CALLS_SPENT = "This session has made its {limit} calls; start a new session."
LIMIT_REACHED = "Your request limit has been reached."
NOT_AN_OBJECT = "Request body must be a JSON object."
NOT_READY = "Service is not ready, try again later."
SUCCESS = "Success"
HOST_NOT_ALLOWED = "Host {host} is not allowed: add it to the service's ALLOWED_HOSTS."
ALREADY_DONE = "This session already has its verdict; start a new session."
IN_PROGRESS = "A selfie of this session is already being judged."
FRAMES_INVALID = "frames must be a list of 1 to 3 base64-encoded images."
MORE_TIME_INVALID = "more_time must be true or false."
TOKEN_MISSING = "Missing session token: send it as 'Authorization: Bearer <token>'."
TOKEN_INVALID = "Invalid session token."
TOKEN_EXPIRED = "The session token has expired; start a new session."
CHALLENGE_NOT_PASSED = "Complete the head-turn challenge before sending the selfie."
CHALLENGE_FAILED = (
    "The head-turn challenge failed; start a new one (POST /sessions/{{id}}/challenge) before "
    "sending the selfie."
)
CHALLENGE_PASSED = "This session's challenge has already passed; send the selfie."
CHALLENGE_TRIES = "This session has used its {limit} challenges; start a new session."
SELFIE_HELD = (
    "This session's selfie was taken; its head-turn challenge decides the verdict (POST "
    "/sessions/{{id}}/quality)."
)
CHALLENGE_UNREADABLE = (
    "This session's challenge cannot go on (stored by another version of the service, or "
    "damaged); start a new session."
)
IDEMPOTENCY_KEY_INVALID = "Idempotency-Key must be 1 to 255 printable ASCII characters."
IDEMPOTENCY_KEY_REPEATED = (
    "Send one Idempotency-Key, without a comma: two Idempotency-Key headers reach the service "
    "as one value joined by commas."
)
IDEMPOTENCY_KEY_REUSED = (
    "This Idempotency-Key was sent with another request body; use a new key for a new check."
)
IDEMPOTENCY_KEY_IN_USE = (
    "The first request with this Idempotency-Key is still being judged; retry it after "
    "Retry-After seconds."
)
# RFC 6750: a refused bearer token names the scheme and why.
BEARER_REFUSED = {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="{code}"'}

CONTENT_CODED = (
    "Content-Encoding is not supported: send the JSON body uncompressed, without Content-Encoding."
)
# RFC 7694 3: a 415 for a content coding says which codings the resource takes (none).
ACCEPTS_IDENTITY = {"Accept-Encoding": "identity"}

# RFC 6750 3.1: a request that sent no token gets the bare challenge, without an error code.
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Answer:
    status: int
    text: str  # a str.format template over the rejection's detail
    key: str = "error"  # the body's field: "error", or "message" where the contract says so
    with_code: bool = False  # the body names the code too: {"error": ..., "code": ...}
    extra: tuple[str, ...] = ()  # detail keys also sent as body fields (the 409's "state")
    headers: Mapping[str, str] = field(default_factory=dict)  # templates over detail and code


ANSWERS: dict[str, Answer] = {
    # the body (views), then admit, in their order
    "content_coded": Answer(415, CONTENT_CODED, headers=ACCEPTS_IDENTITY),
    "body_too_large": Answer(413, "Request body is too large (limit {limit} bytes)."),
    "duplicate_key": Answer(400, "Malformed JSON. Duplicate key {key}."),
    "malformed_json": Answer(400, f"Malformed JSON. {NOT_AN_OBJECT}"),
    "not_an_object": Answer(400, NOT_AN_OBJECT),
    "hash_id_not_a_string": Answer(400, "hash_id must be a string."),
    "auth_throttled": Answer(429, "Too many failed authentication attempts. Try again later."),
    "invalid_credentials": Answer(401, "Invalid credentials", key="message"),
    "rate_limited": Answer(429, "Request rate limit exceeded ({per_minute} per minute)."),
    # an Idempotency-Key (liveness.idempotency), after admit's authentication
    "idempotency_key_invalid": Answer(400, IDEMPOTENCY_KEY_INVALID),
    "idempotency_key_repeated": Answer(400, IDEMPOTENCY_KEY_REPEATED),
    "idempotency_key_reused": Answer(422, IDEMPOTENCY_KEY_REUSED, with_code=True),
    "idempotency_key_in_use": Answer(409, IDEMPOTENCY_KEY_IN_USE, with_code=True),
    # the check, in its order
    "limit_reached": Answer(429, LIMIT_REACHED, key="message"),
    "image_required": Answer(400, IMAGE_REQUIRED),
    "image_not_a_string": Answer(400, "selfie_image must be a base64-encoded string."),
    "image_invalid": Answer(400, IMAGE_INVALID),
    "image_too_many_scans": Answer(400, IMAGE_TOO_MANY_SCANS, with_code=True),  # sessions
    "image_too_many_pixels": Answer(400, IMAGE_TOO_MANY_PIXELS, with_code=True),  # sessions
    "not_ready": Answer(503, NOT_READY),
    **{code: Answer(422, text, with_code=True) for code, text in REFUSALS.items()},
    # the view, and Django's handlers for every API path
    "method_not_allowed": Answer(405, 'Method "{method}" not allowed.'),
    "bad_request": Answer(400, "Bad request."),
    "host_not_allowed": Answer(400, HOST_NOT_ALLOWED),
    "not_found": Answer(404, "Not found."),
    "not_acceptable": Answer(406, "Could not satisfy the request Accept header."),  # the schema
    "server_error": Answer(500, "Internal server error."),
    # a capture session's token calls, in their order
    "unknown_session": Answer(404, "Unknown session."),
    "token_missing": Answer(401, TOKEN_MISSING, with_code=True, headers=BEARER_CHALLENGE),
    "token_invalid": Answer(401, TOKEN_INVALID, with_code=True, headers=BEARER_REFUSED),
    "token_expired": Answer(401, TOKEN_EXPIRED, with_code=True, headers=BEARER_REFUSED),
    "session_done": Answer(409, ALREADY_DONE, extra=("state",)),
    "session_busy": Answer(409, IN_PROGRESS, extra=("state",)),
    "quality_rate_limited": Answer(429, "Quality check rate exceeded ({limit} per second)."),
    "selfie_rate_limited": Answer(429, "Selfie rate exceeded ({limit} per minute)."),
    "session_calls_spent": Answer(429, SESSION_CALLS_SPENT, with_code=True),
    "frames_invalid": Answer(400, FRAMES_INVALID),
    "more_time_invalid": Answer(400, MORE_TIME_INVALID),
    # a session's head-turn challenge (capture.challenge)
    "challenge_not_passed": Answer(409, CHALLENGE_NOT_PASSED, with_code=True),
    "challenge_failed": Answer(409, CHALLENGE_FAILED, with_code=True, extra=("reason",)),
    "challenge_not_required": Answer(409, "This session has no challenge.", with_code=True),
    "challenge_already_passed": Answer(409, CHALLENGE_PASSED, with_code=True),
    "challenge_tries_exhausted": Answer(409, CHALLENGE_TRIES, with_code=True),
    "challenge_unreadable": Answer(409, CHALLENGE_UNREADABLE, with_code=True),
    "selfie_held": Answer(409, SELFIE_HELD, with_code=True),
}


def error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


# The contract's example answers 0.9862353: 7 places. Each model's P(live) is clipped at 0.999
# (ml.profiles.EPS), which an identity score map and float arithmetic turned into
# 0.9989999999999999 on the wire (the shipped, fitted maps answer above 0.999 too).
SCORE_DECIMALS = 7


def answered_score(score: float) -> float:
    """The ``liveness_score`` as answered: rounded to SCORE_DECIMALS places, still a JSON
    number. Only the answer is rounded: ``is_live`` is decided on the exact score."""
    return round(float(score), SCORE_DECIMALS)


def success(is_live: bool, score: float) -> JsonResponse:
    body = {
        "liveness_result": {"is_live": int(is_live), "liveness_score": answered_score(score)},
        "message": SUCCESS,
    }
    # allow_nan=False: a non-finite score fails here (a JSON 500), never sent as invalid JSON
    return JsonResponse(body, status=201, json_dumps_params={"allow_nan": False})


def respond(outcome: Outcome) -> JsonResponse:
    """The response for ``outcome``: 201 with the verdict, or the rejection's answer."""
    if isinstance(outcome, Judged):
        response = success(outcome.is_live, outcome.score)
        response["X-Liveness-Profile"] = outcome.profile
        response["X-Liveness-Capture"] = outcome.capture
        return response
    answer = ANSWERS[outcome.code]
    body: dict[str, object] = {answer.key: answer.text.format(**outcome.detail)}
    if answer.with_code:
        body["code"] = outcome.code
    body.update((key, outcome.detail[key]) for key in answer.extra)
    response = JsonResponse(body, status=answer.status)
    for name, template in answer.headers.items():
        response[name] = template.format(code=outcome.code, **outcome.detail)
    if outcome.retry_after is not None:
        response["Retry-After"] = str(outcome.retry_after)
    return response


def counted(rejection: Rejection, tenant: Tenant | None, client: str = "") -> Rejected:
    """Count a 401 or 429 (database and /metrics) and return it to raise; ``client`` (the
    address) only matters without a tenant. A verdict writes nothing here."""
    status = ANSWERS[rejection.code].status
    tenant_id = None if tenant is None else tenant.pk
    bucket = refusals.count(rejection.code, status, tenant_id, client)
    name = "" if tenant is None else tenant.name
    metrics.observe_refusal(status, rejection.code, tenant_id, name, bucket)
    return Rejected(rejection)
