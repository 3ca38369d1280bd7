"""Quota reservation: atomic under concurrency on SQLite and PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.models import Tenant
from tests.conftest import run_on_database, scratch_database


def run_race(database_url: str, workers: int = 20, limit: int = 5) -> dict[str, object]:
    quota_race = "tests.accounts.quota_race"
    return run_on_database(
        quota_race, database_url, f"--workers={workers}", f"--limit={limit}", timeout=120
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, throw-away PostgreSQL database; skips only when no server answers."""
    with scratch_database("facia_quota") as url:
        yield url


def test_concurrent_reservations_postgresql(postgres_url: str) -> None:
    outcome = run_race(postgres_url)
    assert outcome["vendor"] == "postgresql"
    assert outcome["errors"] == []
    assert (outcome["reserved"], outcome["refused"], outcome["requests_used"]) == (5, 15, 5)


def test_concurrent_reservations_sqlite(tmp_path: Path) -> None:
    outcome = run_race(f"sqlite:///{tmp_path / 'race.sqlite3'}")
    assert outcome["vendor"] == "sqlite"
    assert outcome["errors"] == []
    assert (outcome["reserved"], outcome["refused"], outcome["requests_used"]) == (5, 15, 5)


def test_unlimited_tenant_always_reserves(db: None) -> None:
    tenant = Tenant.objects.create(name="free")
    assert all(Tenant.reserve_unit(tenant.pk) for _ in range(10))
    tenant.refresh_from_db()
    assert tenant.requests_used == 10


def test_reset(db: None) -> None:
    a = Tenant.objects.create(name="a", requests_used=3)
    b = Tenant.objects.create(name="b", requests_used=4)
    assert [
        (t.pk, t.requests_used) for t in Tenant.reset_quotas(Tenant.objects.filter(pk=a.pk))
    ] == [(a.pk, 3)]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.requests_used, b.requests_used) == (0, 4)


@pytest.mark.django_db
def test_check_insert_matches_the_orm_create() -> None:
    """LivenessCheck.insert writes the row objects.create would (defaults, created_at)."""
    from django.utils import timezone

    from liveness.models import LivenessCheck

    tenant = Tenant.objects.create(name="insert-vs-create")
    before = timezone.now()
    LivenessCheck.insert(tenant=tenant, latency_ms=3.5, request_id="r1", is_live=True, score=0.9)
    LivenessCheck.objects.create(
        tenant=tenant, latency_ms=3.5, request_id="r1", is_live=True, score=0.9
    )
    LivenessCheck.insert(tenant=tenant, latency_ms=1.0, request_id="r2", refused_code="no_face")
    fast, orm, refused = LivenessCheck.objects.filter(tenant=tenant).order_by("pk")
    fields = (
        "tenant_id",
        "is_live",
        "score",
        "latency_ms",
        "request_id",
        "capture",
        "refused_code",
    )
    assert [getattr(fast, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert before <= fast.created_at <= orm.created_at
    assert (refused.is_live, refused.score, refused.capture) == (None, None, "")
    with pytest.raises(TypeError, match="no field"):
        LivenessCheck.insert(tenant=tenant, latency_ms=1.0, colour="red")
