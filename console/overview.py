"""The admin index's overview: today's traffic, verdicts and refusals (UTC), the tenants at or
near their limit, each part only for a user who may view its rows; what accuracy to expect by
profile and capture kind (the shipped score maps' provenance); the latest changes of anyone,
commands included."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Avg, Count, F, Model, Q, Sum
from django.utils import timezone

from accounts.models import NEAR_LIMIT_PERCENT, Tenant
from calibration.models import Evaluation
from console import history
from guard import formatting
from guard.models import Refusal
from guard.viewing import user_may_view
from liveness.models import LivenessCheck, created_on
from ml import profiles
from ml.profiles import CAPTURES, PROFILES

NEAR_LIMIT_SHOWN = 20
BUCKETS_SHOWN = 5
CHANGES_SHOWN = 10
# The figures of the provenance shown per profile and capture kind, in this order.
ACCURACY_FIGURES = ("APCER", "BPCER", "ACER")
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Refused:
    """Today's 401 or 429 answers: all of them, and those with no known tenant."""

    status: int
    hits: int
    no_tenant: int

    @property
    def note(self) -> str:
        """What the count is made of: "(no known tenant)" when all of it, else how many."""
        if not self.no_tenant:
            return ""
        if self.no_tenant == self.hits:
            return "no known tenant"
        return f"{formatting.count(self.no_tenant)} with no known tenant"


@dataclass(frozen=True)
class Overview:
    """None: the user may not view that part's rows."""

    checks: dict[str, Any] | None  # live, spoof, refused (422), total, live share, latency
    refusals: list[Refused] | None  # 401 then 429
    buckets: list[dict[str, Any]] | None  # the address buckets refused most today
    near_limit: list[Tenant] | None


def _checks(today: Any) -> dict[str, Any]:
    found = LivenessCheck.objects.filter(created_on(today, today)).aggregate(
        live=Count("pk", filter=Q(is_live=True)),
        spoof=Count("pk", filter=Q(is_live=False)),
        refused=Count("pk", filter=Q(is_live__isnull=True)),
        latency=Avg("latency_ms"),
    )
    judged = found["live"] + found["spoof"]
    total = judged + found["refused"]
    return {
        **found,
        "total": total,
        "live_share": formatting.percent(found["live"] / judged if judged else None),
        "latency": formatting.latency_ms(found["latency"]),
    }


def _refusals(today: Any) -> list[Refused]:
    rows = Refusal.objects.filter(day=today)
    found = rows.aggregate(
        **{
            f"{kind}{status}": Sum("hits", filter=Q(status=status, **where), default=0)
            for status in (401, 429)
            for kind, where in (("all", {}), ("none", {"tenant_id": 0}))
        }
    )
    return [Refused(s, found[f"all{s}"], found[f"none{s}"]) for s in (401, 429)]


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


def overview(may_view: Callable[[type[Model]], bool]) -> Overview:
    """Each part only if ``may_view`` its model's rows (the admin's rule for its list)."""
    today = timezone.now().date()
    refusals = may_view(Refusal)
    return Overview(
        _checks(today) if may_view(LivenessCheck) else None,
        _refusals(today) if refusals else None,
        _buckets(today) if refusals else None,
        near_limit() if may_view(Tenant) else None,
    )


@dataclass(frozen=True)
class Expected:
    """What accuracy to expect of one profile on one capture kind, as people read it."""

    profile: str
    capture: str
    figures: dict[str, str]  # APCER, BPCER, ACER: "24.3 % (11.0-40.2 %)" or NOT_MEASURED
    auc: str


def _figures_of(found: Any, profile: str, capture: str) -> dict[str, Any]:
    """The leave-one-source-out figures of ``profile`` on ``capture`` in the provenance:
    ``{"figures": {profile: {capture: {"APCER": [rate, low, high], ...}}}}`` (or under
    ``leave_one_source_out``; a rate alone is taken too, and an entry with ``before`` and
    ``after`` gives its ``after``)."""
    by_profile = found.get("figures") or found.get("leave_one_source_out") or {}
    entry = (by_profile.get(profile) or {}).get(capture) if isinstance(by_profile, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("after"), dict):
        entry = entry["after"]  # before and after the map: what to expect is after
    return entry if isinstance(entry, dict) else {}


def _interval(value: Any) -> str:
    values = value if isinstance(value, list | tuple) else [value]
    return formatting.percent_interval(values)


def expected_accuracy() -> tuple[list[Expected], dict[str, Any]]:
    """One row per profile and capture kind, with the provenance they come from; every figure
    NOT_MEASURED while the shipped maps are not fitted."""
    provenance = profiles.score_maps().get("provenance") or {}
    fitted = bool(provenance.get("fitted"))
    rows = []
    for profile in PROFILES:
        for capture in CAPTURES:
            figures = _figures_of(provenance, profile, capture) if fitted else {}
            shown = {
                name: _interval(figures[name]) if name in figures else NOT_MEASURED
                for name in ACCURACY_FIGURES
            }
            auc = figures.get("AUC")
            auc_value = auc[0] if isinstance(auc, list | tuple) and auc else auc
            shown_auc = formatting.decimal(auc_value, 3) if auc is not None else NOT_MEASURED
            rows.append(Expected(profile, capture, shown, shown_auc))
    return rows, provenance


def latest_evaluations() -> list[Evaluation]:
    """The last ``manage.py evaluate`` of each profile, newest first."""
    found = (Evaluation.latest_for(profile) for profile in PROFILES)
    return [e for e in found if e is not None]


def recent_changes(user: Any) -> list[LogEntry]:
    """The latest history entries of anyone (``facia-system`` for a command) on the models
    ``user`` may view: Django's "Recent actions" shows only the user's own."""
    entries = LogEntry.objects.select_related("user", "content_type").order_by("-action_time")
    if not user.is_superuser:
        used = entries.values_list("content_type", flat=True).distinct()
        viewable = [
            ct.pk
            for ct in ContentType.objects.filter(pk__in=used)
            if (model := ct.model_class()) is not None and user_may_view(user, model)
        ]
        entries = entries.filter(content_type__in=viewable)
    found = list(entries[:CHANGES_SHOWN])
    history.shown(found, user)
    return found
