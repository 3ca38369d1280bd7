"""``authorize``: the one gate in front of /liveness, as healthchecks' ``authorize`` is. In order
(the README's API table):

1. the body: 413 over ``LIVENESS_MAX_BODY_BYTES``, 400 unless it is one JSON object;
2. ``hash_id``: 400 unless a string (or absent); 429 while this client (IP) has failed too
   often (``guard``); 401 unless it names an active tenant (``accounts``; the failure counts
   against the client);
3. the tenant's rate limit: 429 over ``rate_limit_per_minute`` (``guard``).

Each 401 and 429 (the quota's too) is counted (``refused``): per tenant where the hash_id names
one, revoked or not, else per client address bucket. The view then gets an
``AuthorizedRequest``; a rejection is answered from ``liveness.responses.ANSWERS``. Accounts and
guard return a tenant or a throttle window, never a response.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request

from accounts.auth import authenticate, owner_of
from accounts.models import Tenant
from guard import refusals, throttle
from liveness import responses
from liveness.http import parse_object, read_body
from liveness.outcomes import Rejected, Rejection
from telemetry import metrics
from telemetry.logs import request_id_of


@dataclass(frozen=True)
class AuthorizedRequest:
    tenant: Tenant
    payload: dict[str, object]  # the parsed JSON object
    request_id: str


def refused(request: HttpRequest, rejection: Rejection, tenant: Tenant | None) -> Rejected:
    """Count a 401 or 429 (database and /metrics) and return it to raise. Only on refusals:
    a verdict writes nothing here."""
    status = responses.ANSWERS[rejection.code].status
    address = throttle.client_ip(request)
    tenant_id = None if tenant is None else tenant.pk
    bucket = refusals.count(rejection.code, status, tenant_id, address)
    name = "" if tenant is None else tenant.name
    metrics.observe_refusal(status, rejection.code, tenant_id, name, bucket)
    return Rejected(rejection)


def authorized(request: HttpRequest) -> AuthorizedRequest:
    """Steps 1-3 above; Rejected at the first that fails."""
    payload = parse_object(read_body(request))
    hash_id = payload.get("hash_id")
    if hash_id is not None and not isinstance(hash_id, str):
        raise Rejected(Rejection("hash_id_not_a_string"))
    client = throttle.client_ip(request)
    if (blocked := throttle.auth_blocked(client)) is not None:
        throttled = Rejection("auth_throttled", retry_after=blocked.retry_after())
        raise refused(request, throttled, None)  # the client is throttled, not a tenant
    tenant = authenticate(hash_id)
    if tenant is None:
        throttle.auth_failed(client)
        raise refused(request, Rejection("invalid_credentials"), owner_of(hash_id))
    per_minute = tenant.rate_limit_per_minute
    if (over := throttle.tenant_rate_exceeded(tenant.pk, per_minute)) is not None:
        detail = {"per_minute": per_minute}
        over_rate = Rejection("rate_limited", detail, retry_after=over.retry_after())
        raise refused(request, over_rate, tenant)
    return AuthorizedRequest(tenant, payload, request_id_of(request))


View = Callable[[Any, Request, AuthorizedRequest], HttpResponseBase]


def authorize(view: View) -> Callable[[Any, Request], HttpResponseBase]:
    """Decorate an APIView method ``(self, request, call)``; it runs only once authorized."""

    @wraps(view)
    def wrapper(self: Any, request: Request) -> HttpResponseBase:
        try:
            call = authorized(request._request)  # the Django request under DRF's
        except Rejected as exc:
            return responses.respond(exc.rejection)
        response = view(self, request, call)
        if response.status_code == 429:  # the quota (limit_reached)
            refused(request._request, Rejection("limit_reached"), call.tenant)
        return response

    return wrapper
