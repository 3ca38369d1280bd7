"""The OpenAPI schema's parts: serializers that describe the contract (the views parse by
hand), and what the schema adds to the views' @extend_schema: /status_check and /healthz (plain
Django views, which drf-spectacular cannot see), their GET and HEAD, and the response headers
every operation shares."""

import copy
from typing import Any, ClassVar

from django.http import Http404, HttpResponse
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_serializer,
)
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.utils.mediatypes import _MediaType, media_type_matches
from rest_framework.views import APIView

from liveness import answers, runtime
from liveness.answers import Rejection
from ml.quality import REFUSALS

Schema = dict[str, Any]
# The contract's bodies: drf-spectacular reads their fields, and no view serializes an object
# with one, so none has an instance.
Body = serializers.Serializer[None]


class LivenessRequestSerializer(Body):
    hash_id = serializers.CharField(help_text="Your credential, as issued by the operator.")
    selfie_image = serializers.CharField(
        help_text="PNG or JPEG as base64, optionally prefixed with `data:image/...;base64,`."
    )


class LivenessResultSerializer(Body):
    is_live = serializers.IntegerField(min_value=0, max_value=1)
    liveness_score = serializers.FloatField(
        min_value=0.0, max_value=1.0, help_text="Probability that the face is live."
    )


class LivenessResponseSerializer(Body):
    liveness_result = LivenessResultSerializer()
    message = serializers.ChoiceField(choices=["Success"], help_text="Always `Success`.")


class MessageSerializer(Body):
    message = serializers.CharField()


class ErrorSerializer(Body):
    error = serializers.CharField()


@extend_schema_serializer(component_name="Refusal")  # the published schema's name
class QualityGateSerializer(ErrorSerializer):
    """A quality gate's 422: a fixed sentence per code (docs/integrator/api.md, "Quality gates")."""

    code = serializers.ChoiceField(
        choices=list(REFUSALS), help_text="The gate that refused the face; branch on this."
    )


class KeyReusedSerializer(ErrorSerializer):
    """422: an Idempotency-Key sent again with another body."""

    code = serializers.ChoiceField(choices=["idempotency_key_reused"])


class KeyInUseSerializer(ErrorSerializer):
    """409: the first request with this Idempotency-Key is still being judged."""

    code = serializers.ChoiceField(choices=["idempotency_key_in_use"])


UNPROCESSABLE = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="LivenessUnprocessable",
        serializers=[QualityGateSerializer, KeyReusedSerializer],
        resource_type_field_name=None,
    ),
    description="No usable face, or a quality gate refused it (`code` names the gate); or the "
    "`Idempotency-Key` was sent before with another body (`idempotency_key_reused`).",
)
KEY_IN_USE = OpenApiResponse(
    KeyInUseSerializer,
    description="The first request with this `Idempotency-Key` is still being judged: retry "
    "after `Retry-After` seconds (`1`).",
)

TOO_MANY = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="TooManyRequests",
        serializers=[MessageSerializer, ErrorSerializer],
        resource_type_field_name=None,
    ),
    description='`{"message": "Your request limit has been reached."}` when the tenant\'s '
    'request limit is reached (no `Retry-After`), or `{"error": ...}` with `Retry-After` '
    "when a throttle refused it (failed authentications from this IP, or the tenant's rate).",
)

CONTENT_CODED = OpenApiResponse(
    ErrorSerializer,
    description="A `Content-Encoding` other than `identity` (gzip, br...): no content coding "
    "is decoded; send the body uncompressed. `Accept-Encoding: identity`.",
)

REQUEST_ID: Schema = {
    "description": "The caller's X-Request-ID when it is 1-128 characters of "
    "`[A-Za-z0-9._:-]`, otherwise a new uuid4 hex.",
    "required": True,
    "schema": {"type": "string"},
}
RETRY_AFTER: Schema = {
    "description": "Seconds to wait: sent by the throttles (429 with `error`) and by a 503 "
    "caused by the database or a worker not ready (`1`); absent on the quota 429 (`message`).",
    "schema": {"type": "integer", "minimum": 0},
}
# RFC 6750 3.1: a request without a token gets the bare challenge, a refused token its error.
WWW_AUTHENTICATE: Schema = {
    "description": '`Bearer` without a token (`token_missing`); `Bearer error="invalid_token", '
    'error_description="<code>"` for a token refused (`token_invalid`, `token_expired`).',
    "required": True,
    "schema": {"type": "string", "pattern": "^Bearer"},
}
NO_STORE: Schema = {
    "description": "`no-store`: a verdict, a session token or a session's state is kept by "
    "no cache on the way.",
    "required": True,
    "schema": {"type": "string", "enum": ["no-store"]},
}
ALLOW: Schema = {
    "description": "The allowed methods.",
    "required": True,
    "schema": {"type": "string"},
}
ACCEPT_ENCODING: Schema = {
    "description": "The content codings a request body may have (RFC 7694): none.",
    "required": True,
    "schema": {"type": "string", "enum": ["identity"]},
}
CORS_ORIGIN: Schema = {
    "description": "The request's `Origin` (or `*`) when it is in `CAPTURE_ALLOWED_ORIGINS`; "
    "absent otherwise.",
    "schema": {"type": "string"},
}
LIVENESS_HEADERS: Schema = {
    "X-Liveness-Profile": {
        "description": "The tenant's profile, which judged the image.",
        "required": True,
        "schema": {"type": "string", "enum": ["fast", "thorough"]},
    },
    "X-Liveness-Capture": {
        "description": "What the engine judged: a full camera frame or a face crop.",
        "required": True,
        "schema": {"type": "string", "enum": ["frame", "crop"]},
    },
}


REPLAYED: Schema = {
    "description": "`true` when this is the answer stored for the request's "
    "`Idempotency-Key`, sent again (no unit of quota spent, nothing judged); absent otherwise.",
    "schema": {"type": "string", "enum": ["true"]},
}


def _text(values: list[str], description: str, pattern: str = "") -> Schema:
    """A text/plain answer: one of ``values``, or else one matching ``pattern`` when given."""
    schema: Schema = {"type": "string", "enum": values}
    if pattern:
        schema = {"oneOf": [schema, {"type": "string", "pattern": pattern}]}
    return {
        "description": description,
        "content": {"text/plain": {"schema": schema}},
        "headers": {"X-Request-ID": REQUEST_ID},
    }


# runtime.NOT_MIGRATED with its count: "Database not migrated: 3 migration(s) not applied".
NOT_MIGRATED_PATTERN = (
    "^" + runtime.NOT_MIGRATED.replace("(", r"\(").replace(")", r"\)").format("[0-9]+") + "$"
)


# ErrorSerializer's component, as drf-spectacular names it (the plain view has no serializer).
ERROR: Schema = {"$ref": "#/components/schemas/Error"}


def _probe(
    name: str,
    what: str,
    description: str,
    up: str,
    down: list[str],
    said: tuple[str, str] = ("Ready.", "Not ready."),
    down_pattern: str = "",
) -> Schema:
    """A probe's GET and HEAD: 200 ``up``, 503 with one of the reasons ``down`` or one
    matching ``down_pattern`` (text/plain); ``said``: what each of the two statuses means."""
    ok, not_ok = said
    return {
        "get": {
            "operationId": name,
            "summary": what,
            "description": f"{description} HEAD answers the same without a body.",
            "tags": [name],
            "security": [{}],
            "responses": {
                "200": _text([up], ok),
                "503": _text(down, not_ok, down_pattern),
                "405": {
                    "description": "Any method but GET and HEAD (`Allow`), as JSON like every "
                    "API path's errors.",
                    "content": {"application/json": {"schema": ERROR}},
                },
            },
        },
        # GET's answers without their body (a load balancer's or a kubelet's probe).
        "head": {
            "operationId": f"{name}_head",
            "summary": f"{what}, without a body",
            "description": "GET's status and headers, no body.",
            "tags": [name],
            "security": [{}],
            "responses": {"200": {"description": ok}, "503": {"description": not_ok}},
        },
    }


STATUS_CHECK = _probe(
    "status_check",
    "Readiness of the worker that answers",
    "200 once this worker's engine is loaded and warmed, the database has every migration of "
    "this release and it can record a check; 503 with the reason otherwise.",
    runtime.SERVICE_LIVE,
    [runtime.STARTING, runtime.DB_DOWN, runtime.DB_FULL, runtime.DB_BUSY],
    down_pattern=NOT_MIGRATED_PATTERN,
)
# The livenessProbe's: never the database (restarting a pod cures no database).
HEALTHZ = _probe(
    "healthz",
    "Liveness of the worker that answers",
    "200 once this worker's engine is loaded and warmed, whatever the database says; 503 "
    "before. Under gunicorn the worker answers it itself, not behind queued requests.",
    runtime.PROCESS_LIVE,
    [runtime.STARTING],
    ("Live.", "Starting."),
)
# Plain Django views, which drf-spectacular cannot see; their answers carry no Cache-Control.
PROBES = {"/status_check": STATUS_CHECK, "/healthz": HEALTHZ}


def _add_headers(path: str, status: str, operation: Schema, response: Schema) -> None:
    headers = response.setdefault("headers", {})
    headers["X-Request-ID"] = REQUEST_ID
    if path not in PROBES:
        headers["Cache-Control"] = NO_STORE
    if status in ("429", "503"):
        headers["Retry-After"] = RETRY_AFTER
    if status == "405":
        headers["Allow"] = ALLOW
    if status == "415":
        headers["Accept-Encoding"] = ACCEPT_ENCODING
    if path == "/liveness" and status == "201":
        headers.update(LIVENESS_HEADERS)
    if path == "/liveness" and status in ("201", "422"):
        headers["Idempotent-Replayed"] = REPLAYED
    if path == "/liveness" and status == "409":
        headers["Retry-After"] = {**RETRY_AFTER, "required": True}
    if {"sessionToken": []} in operation.get("security", []):
        headers["Access-Control-Allow-Origin"] = CORS_ORIGIN
        if status == "401":
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE


# Answers no operation lists: gunicorn's worker gives them on any path before Django routes
# the request (docs/integrator/api.md, "Malformed requests"), and Django's for every path.
ANY_PATH = """

**Any path** may also be answered, as JSON `{"error": "<sentence>"}` with `X-Request-ID`:
before the request is read, 429 (too many connections from this client) or 503 (the worker
busy), both with `Retry-After: 1` and `Connection: close`; for a request that cannot be
parsed, 400, 414 (request line too long), 417 (an `Expect` other than `100-continue`), 431
(header fields too large or too many) or 501 (a transfer coding other than chunked); 400 for
a `Host` outside `ALLOWED_HOSTS`; 404 for an unknown URL; 500 for a fault of the service."""


def postprocess(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """drf-spectacular POSTPROCESSING_HOOKS entry (after its enum hook)."""
    result["info"]["description"] += ANY_PATH
    result["paths"].update(copy.deepcopy(PROBES))
    for path, operations in result["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                _add_headers(path, status, operation, response)
    return result


def _refused(media_range: str) -> bool:
    """Whether an Accept entry has weight 0 (``q=0``, ``q=0.000``)."""
    weight = _MediaType(media_range).params.get("q", "1")
    try:
        return float(weight) == 0
    except ValueError:  # not a weight: DRF reads the entry as it is
        return False


class HonoursNotAcceptable(DefaultContentNegotiation):
    """RFC 9110 12.4.2: an Accept entry of weight 0 is "not acceptable". DRF reads no weight,
    so ``Accept: application/vnd.oai.openapi+json; q=0`` got the JSON schema, and
    ``application/json; q=0, application/vnd.oai.openapi; q=0`` the YAML one: the types the
    client refused, where the docs promise 406. A refused type is not served, whatever other
    entry (``*/*``) would match it."""

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[Any, str]:
        refused = [entry for entry in super().get_accept_list(request) if _refused(entry)]
        kept = [
            r for r in renderers if not any(media_type_matches(r.media_type, e) for e in refused)
        ]
        if not kept:
            raise NotAcceptable(available_renderers=renderers)
        chosen: tuple[Any, str] = super().select_renderer(request, kept, format_suffix)
        return chosen

    def get_accept_list(self, request: Request) -> list[str]:
        return [entry for entry in super().get_accept_list(request) if not _refused(entry)]


class ReadOnlyPage(APIView):
    """What the schema and its two pages answer besides a GET or HEAD they can serve: our JSON
    errors, as every API path's. drf-spectacular's views answered OPTIONS /api/docs/ 500 (DRF's
    metadata through a template-less HTML renderer), OPTIONS /api/schema/ 200 with the view's
    docstring as YAML, and every other method, an unknown ``?format=`` (404) or an ``Accept``
    they cannot serve (406) in the page's own format: YAML on the schema, a bare
    ``405 Method Not Allowed`` text on the pages."""

    http_method_names = ["get", "head"]
    allowed_methods: list[str]
    content_negotiation_class = HonoursNotAcceptable

    def http_method_not_allowed(  # type: ignore[override]  # DRF's stubs say Response; DRF takes any HttpResponse
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = answers.respond(Rejection("method_not_allowed", {"method": request.method}))
        response["Allow"] = ", ".join(self.allowed_methods)
        return response

    def handle_exception(  # type: ignore[override]  # DRF's stubs say Response; DRF takes any HttpResponse
        self, exc: Exception
    ) -> HttpResponse:
        if isinstance(exc, Http404):  # ?format= names no renderer of the page
            return answers.respond(Rejection("not_found"))
        if isinstance(exc, NotAcceptable):  # an Accept it cannot serve
            return answers.respond(Rejection("not_acceptable"))
        if isinstance(exc, APIException):
            return answers.error(str(exc.detail), exc.status_code)
        return super().handle_exception(exc)


class SwaggerView(ReadOnlyPage, SpectacularSwaggerSplitView):
    """``/api/docs/``."""


class RedocView(ReadOnlyPage, SpectacularRedocView):
    """``/api/redoc/``."""


class SchemaView(ReadOnlyPage, SpectacularAPIView):
    """``/api/schema/``, generated once per process and version, and rendered once per format:
    anyone may read it, and generating it costs 20-26 ms of CPU (more than a liveness check's
    15 ms): per request, an anonymous client could spend the workers' CPU. So would rendering
    the kept schema as YAML, the format a client gets without an Accept header: 29.6 ms of CPU
    per request against 0.8 ms kept rendered (JSON 3.2 ms against 0.4 ms; interleaved, 40
    each).
    The schema depends only on the code."""

    _generated: ClassVar[dict[str | None, Schema]] = {}
    # (version, renderer, JSON indent: 0-8 or none, as DRF reads it) -> the answer's body.
    _rendered: ClassVar[dict[tuple[str | None, type, int | None], bytes]] = {}

    def _get_schema_response(self, request: Request) -> HttpResponse:
        # The API has one version; a client's ?version= is not read. drf-spectacular took any
        # value (no ALLOWED_VERSIONS): it went into Content-Disposition (a quote added a
        # filename*, a newline made the answer a 500) and each new one kept one more schema.
        version = self.api_version or request.version
        # The renderer's own type, not the client's Accept entry that chose it (DRF's
        # accepted_media_type): that echoed "charset=utf-16" or "q=0.5" into the answer's
        # Content-Type, a UTF-8 body declared UTF-16.
        media_type, charset = (
            request.accepted_renderer.media_type,
            request.accepted_renderer.charset,
        )
        response = HttpResponse(
            self._body(request, version),
            content_type=f"{media_type}; charset={charset}" if charset else media_type,
        )
        filename = self._get_filename(request, version)
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        return response

    def _body(self, request: Request, version: str | None) -> bytes:
        """The schema as the negotiated renderer writes it, rendered once per process."""
        renderer, media_type = request.accepted_renderer, request.accepted_media_type
        indent = getattr(renderer, "get_indent", lambda *_: None)(media_type, {})
        key = (version, type(renderer), indent)
        if key not in self._rendered:
            body = renderer.render(self._schema(request, version), media_type, {})
            self._rendered[key] = body.encode() if isinstance(body, str) else body
        return self._rendered[key]

    def _schema(self, request: Request, version: str | None) -> Schema:
        if version not in self._generated:
            generator = self.generator_class(
                urlconf=self.urlconf, api_version=version, patterns=self.patterns
            )
            self._generated[version] = generator.get_schema(request=request, public=True)
        return self._generated[version]
