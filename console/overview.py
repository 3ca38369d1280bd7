"""The admin index's overview: today's checks and refusals (UTC) and the tenants at or near
their limit, each part only for a user who may view its rows."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from accounts.models import NEAR_LIMIT_PERCENT, Tenant
from guard.models import Refusal
from liveness.models import LivenessCheck

NEAR_LIMIT_SHOWN = 20
BUCKETS_SHOWN = 5


@dataclass(frozen=True)
class Overview:
    """None: the user may not view that part's rows."""

    checks: dict[str, int] | None  # live, spoof, refused (422)
    refusals: dict[str, int] | None  # 401 and 429, with and without a known tenant
    buckets: list[dict[str, Any]] | None  # the address buckets refused most today
    near_limit: list[Tenant] | None


def _checks(today: Any) -> dict[str, int]:
    return LivenessCheck.objects.filter(created_at__date=today).aggregate(
        live=Count("pk", filter=Q(is_live=True)),
        spoof=Count("pk", filter=Q(is_live=False)),
        refused=Count("pk", filter=Q(is_live__isnull=True)),
    )


def _refusals(today: Any) -> dict[str, int]:
    rows = Refusal.objects.filter(day=today)
    return rows.aggregate(
        unauthorized=Sum("hits", filter=Q(status=401), default=0),
        throttled=Sum("hits", filter=Q(status=429), default=0),
        unknown_tenant=Sum("hits", filter=Q(tenant_id=0), default=0),
    )


def _buckets(today: Any) -> list[dict[str, Any]]:
    rows = (
        Refusal.objects.filter(day=today, tenant_id=0)
        .values("client")
        .annotate(hits=Sum("hits"))
        .order_by("-hits", "client")
    )
    return [dict(row) for row in rows[:BUCKETS_SHOWN]]


def near_limit() -> list[Tenant]:
    """Active tenants with a limit and NEAR_LIMIT_PERCENT of it or less left, fullest first
    (the same rule as ``Tenant.quota_state``)."""
    return list(
        Tenant.objects.filter(is_active=True, request_limit__isnull=False)
        .annotate(
            left100=(F("request_limit") - F("requests_used")) * 100,
            share=F("request_limit") * NEAR_LIMIT_PERCENT,
        )
        .filter(left100__lte=F("share"))
        .order_by("left100", "name")[:NEAR_LIMIT_SHOWN]
    )


def overview(user: Any) -> Overview:
    today = timezone.now().date()
    refusals = user.has_perm("guard.view_refusal")
    return Overview(
        _checks(today) if user.has_perm("liveness.view_livenesscheck") else None,
        _refusals(today) if refusals else None,
        _buckets(today) if refusals else None,
        near_limit() if user.has_perm("accounts.view_tenant") else None,
    )
