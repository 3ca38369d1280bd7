"""manage.py prune_checks."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from guard.models import Counter
from liveness.models import LivenessCheck


def test_prune_checks(make_tenant: Any) -> None:
    tenant, _ = make_tenant()
    old, recent = (
        LivenessCheck.objects.create(tenant=tenant, latency_ms=1, is_live=True, score=0.9)
        for _ in range(2)
    )
    LivenessCheck.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    Counter.objects.create(scope="auth-fail", subject="1.2.3.4", bucket=0, hits=3)
    out = StringIO()
    call_command("prune_checks", "--days", "30", stdout=out)
    assert list(LivenessCheck.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Counter.objects.exists()
    assert "deleted 1 check(s) older than 30 day(s)" in out.getvalue()
    tenant.refresh_from_db()
    assert tenant.requests_used == 0  # pruning records never gives quota back or takes it


@override_settings(LIVENESS_RETENTION_DAYS=10)
def test_prune_checks_defaults_to_the_retention_setting(make_tenant: Any) -> None:
    tenant, _ = make_tenant()
    check = LivenessCheck.objects.create(tenant=tenant, latency_ms=1)
    LivenessCheck.objects.filter(pk=check.pk).update(created_at=timezone.now() - timedelta(days=11))
    out = StringIO()
    call_command("prune_checks", stdout=out)
    assert "older than 10 day(s)" in out.getvalue()
    assert not LivenessCheck.objects.exists()


def test_prune_checks_refuses_negative_days(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("prune_checks", "--days", "-1")


@pytest.mark.parametrize("days", ["800000", "99999999999"])
def test_prune_checks_refuses_days_no_date_can_reach(db: None, days: str) -> None:
    """Refused, not an OverflowError's traceback (a date before year 1, or beyond a C int)."""
    with pytest.raises(CommandError, match="must be 0 to 36500"):
        call_command("prune_checks", "--days", days)
