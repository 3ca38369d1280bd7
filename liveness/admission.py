"""``admit``: the one gate in front of every endpoint that takes a hash_id (/liveness, POST
/sessions, GET /sessions/{id}), as healthchecks' ``authorize`` is. In order (the README's API
table):

1. ``hash_id``: 400 unless a string (or absent);
2. the client (IP): 429 while it has failed too often (``guard``);
3. the tenant: 401 unless the hash_id names an active one (``accounts``; the failure counts
   against the client);
4. the tenant's rate limit: 429 over ``rate_limit_per_minute`` (``guard``);
5. its quota as loaded: 429 at its request limit, before any image is read.

Steps 4 and 5 (``within_limits``) also guard a session's token calls. Each 401 and 429 is
``counted`` (guard.refusals and /metrics): per tenant where the hash_id names one, revoked or
not, else per client address bucket. It is raised as ``Rejected``; the view answers it from
ANSWERS.
"""

from enum import Enum

from django.http import HttpRequest

from accounts import quota
from accounts.auth import authenticate, owner_of
from accounts.models import Tenant
from guard import refusals, throttle
from liveness.outcomes import Rejected, Rejection
from liveness.responses import ANSWERS
from telemetry import metrics


class Quota(Enum):
    """What a call asks of the tenant's quota."""

    NONE = "none"  # reads what was already paid for (a session's verdict)
    ROOM = "room"  # needs a unit left (a session, a quality frame)
    CHECK = "check"  # is a check: turned away for quota, it also counts as a refused verdict


def counted(rejection: Rejection, tenant: Tenant | None, client: str = "") -> Rejected:
    """Count a 401 or 429 (database and /metrics) and return it to raise; ``client`` (the
    address) only matters without a tenant. A verdict writes nothing here."""
    status = ANSWERS[rejection.code].status
    tenant_id = None if tenant is None else tenant.pk
    bucket = refusals.count(rejection.code, status, tenant_id, client)
    name = "" if tenant is None else tenant.name
    metrics.observe_refusal(status, rejection.code, tenant_id, name, bucket)
    return Rejected(rejection)


def within_limits(tenant: Tenant, asks: Quota) -> None:
    """Steps 4 and 5: the tenant's rate, then its quota as read now (a hint: the unit is
    taken by the check's own transaction)."""
    per_minute = tenant.rate_limit_per_minute
    if (over := throttle.tenant_rate_exceeded(tenant.pk, per_minute)) is not None:
        detail = {"per_minute": per_minute}
        raise counted(Rejection("rate_limited", detail, retry_after=over.retry_after()), tenant)
    if asks is not Quota.NONE and not quota.has_room(tenant):
        if asks is Quota.CHECK:
            metrics.observe_rejection(tenant.pk, tenant.name, "quota")
        raise counted(Rejection("limit_reached"), tenant)


def admit(request: HttpRequest, hash_id: object, asks: Quota) -> Tenant:
    """Steps 1-5 above: the tenant ``hash_id`` names; Rejected at the first that fails."""
    if hash_id is not None and not isinstance(hash_id, str):
        raise Rejected(Rejection("hash_id_not_a_string"))
    client = throttle.client_ip(request)
    if (blocked := throttle.auth_blocked(client)) is not None:
        throttled = Rejection("auth_throttled", retry_after=blocked.retry_after())
        raise counted(throttled, None, client)  # the client is throttled, not a tenant
    tenant = authenticate(hash_id)
    if tenant is None:
        throttle.auth_failed(client)
        raise counted(Rejection("invalid_credentials"), owner_of(hash_id), client)
    within_limits(tenant, asks)
    return tenant
