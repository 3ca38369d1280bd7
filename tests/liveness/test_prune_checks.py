"""manage.py prune_checks: old check records a batch at a time, and the expired rows of the
tables it keeps small (throttle windows, Idempotency-Keys, admin sessions)."""

from datetime import timedelta
from importlib import import_module
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from guard.models import Counter
from guard.sessions import stored_key
from liveness.management.commands.prune_checks import BATCH
from liveness.models import LivenessCheck

TABLE = LivenessCheck._meta.db_table


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


def test_a_backlog_of_more_than_a_batch_is_all_deleted_a_batch_at_a_time(
    make_tenant: Any,
) -> None:
    """Two batches and one record more past retention: every one deleted, BATCH at most per
    DELETE (each its own transaction); the records inside retention kept. One DELETE of a
    750,000-record backlog held SQLite's write lock 22.7 s: selfies meanwhile got 503."""
    tenant, _ = make_tenant()
    LivenessCheck.objects.bulk_create(
        LivenessCheck(tenant=tenant, latency_ms=1, is_live=True) for _ in range(2 * BATCH + 3)
    )
    kept = list(LivenessCheck.objects.order_by("pk").values_list("pk", flat=True)[:2])
    old = LivenessCheck.objects.exclude(pk__in=kept)
    old.update(created_at=timezone.now() - timedelta(days=31))
    LivenessCheck.objects.filter(pk=kept[1]).update(
        created_at=timezone.now() - timedelta(days=30) + timedelta(minutes=1)
    )
    out = StringIO()
    with CaptureQueriesContext(connection) as captured:
        call_command("prune_checks", "--days", "30", stdout=out)
    deletes = [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith(f'DELETE FROM "{TABLE}"')
    ]
    assert len(deletes) == 3, [sql[:100] for sql in deletes]
    assert all(sql.count(",") < BATCH for sql in deletes)
    assert sorted(LivenessCheck.objects.values_list("pk", flat=True)) == kept
    assert f"deleted {2 * BATCH + 1} check(s) older than 30 day(s)" in out.getvalue()


def test_prune_checks_deletes_the_expired_admin_sessions(db: None) -> None:
    """With the configured engine's ``clear_expired``, counted: nothing else deleted them but
    the next admin sign-in (``bin/entrypoint prune`` left a login's row for ever)."""
    engine = import_module(settings.SESSION_ENGINE)
    stores = [engine.SessionStore() for _ in range(3)]
    for store in stores:
        store["who"] = "operator"
        store.create()
    ended = timezone.now() - timedelta(seconds=1)
    Session.objects.filter(session_key__in=[stored_key(s.session_key) for s in stores[:2]]).update(
        expire_date=ended
    )
    out = StringIO()
    call_command("prune_checks", stdout=out)
    assert out.getvalue().rstrip().endswith("2 expired admin session(s)")
    assert list(Session.objects.values_list("session_key", flat=True)) == [
        stored_key(stores[2].session_key)
    ]
    assert engine.SessionStore(stores[2].session_key).load() == {"who": "operator"}
