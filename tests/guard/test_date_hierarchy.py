"""A list's date hierarchy shows the periods that have rows as Django's would, each found as a
range of the field's index (``guard.hierarchy``): Django's ``SELECT DISTINCT`` of a truncated
date called a Python function on every row on SQLite, 7.2 s over 247,000 check records."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Tenant
from guard.hierarchy import MAX_PROBES, IndexedDates
from guard.models import Refusal
from liveness.models import LivenessCheck

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)
# Check records either side of a year's, a month's and a day's end (UTC), and a year later.
CREATED = [
    datetime(2025, 1, 1, tzinfo=UTC) - TICK,
    datetime(2025, 1, 1, tzinfo=UTC),
    datetime(2025, 3, 15, 12, tzinfo=UTC),
    datetime(2025, 4, 1, tzinfo=UTC) - TICK,
    datetime(2025, 4, 1, tzinfo=UTC),
    datetime(2026, 2, 1, tzinfo=UTC),
]
CHECKS = "/admin/liveness/livenesscheck/"


@pytest.fixture(name="tenants")
def tenants_fixture() -> tuple[Tenant, Tenant]:
    """Acme with a live check at each of CREATED, then a refused one; Beta with one check."""
    acme, beta = Tenant.objects.create(name="Acme"), Tenant.objects.create(name="Beta")
    for when in CREATED:
        made = LivenessCheck.insert(tenant=acme, is_live=True, latency_ms=1.0)
        LivenessCheck.objects.filter(pk=made).update(created_at=when)
    refused = LivenessCheck.insert(tenant=acme, refused_code="no_face", latency_ms=1.0)
    LivenessCheck.objects.filter(pk=refused).update(created_at=CREATED[2])
    made = LivenessCheck.insert(tenant=beta, is_live=False, latency_ms=1.0)
    LivenessCheck.objects.filter(pk=made).update(created_at=datetime(2025, 3, 2, tzinfo=UTC))
    for day in (date(2025, 3, 1), date(2025, 3, 9), date(2026, 1, 5)):
        Refusal.objects.create(day=day, code="invalid_credentials", status=401, hits=1)
    return acme, beta


def shown(cl: Any) -> dict[str, Any]:
    """What the list ``cl``'s date hierarchy shows (Django's template tag)."""
    found = date_hierarchy(cl)
    assert found is not None
    return dict(found)


def as_django_would(cl: Any) -> dict[str, Any]:
    """The hierarchy of the list ``cl`` as Django's own queryset lists its periods."""
    plain: QuerySet[Any] = QuerySet(cl.model, cl.queryset.query.chain(), cl.queryset.db)
    original, cl.queryset = cl.queryset, plain
    try:
        return shown(cl)
    finally:
        cl.queryset = original


def titles(hierarchy: dict[str, Any]) -> list[str]:
    return [str(choice["title"]) for choice in hierarchy["choices"]]


def test_the_checks_hierarchy_lists_what_djangos_would(
    admin_client: Client, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, beta = tenants
    pages = {
        "": ["2024", "2025", "2026"],
        "?created_at__year=2025": ["January 2025", "March 2025", "April 2025"],
        "?created_at__year=2025&created_at__month=3": ["March 2", "March 15", "March 31"],
        f"?created_at__year=2025&created_at__month=3&tenant__id__exact={acme.pk}": [
            "March 15",
            "March 31",
        ],
        f"?tenant__id__exact={beta.pk}": ["March 2"],  # one month's rows: its days
        "?verdict=refused": ["March 15"],
        "?created_at__year=2025&created_at__month=3&created_at__day=15": ["March 15"],
        "?created_at__year=2023": [],
    }
    for query, expected in pages.items():
        response = admin_client.get(CHECKS + query)
        assert response.status_code == 200, query
        cl = response.context["cl"]
        assert isinstance(cl.queryset, IndexedDates), query
        hierarchy = shown(cl)
        assert hierarchy == as_django_would(cl), query
        assert titles(hierarchy) == expected, query


def test_the_refusals_hierarchy_of_days_lists_what_djangos_would(
    admin_client: Client, tenants: tuple[Tenant, Tenant]
) -> None:
    pages = {
        "": ["2025", "2026"],
        "?day__year=2025": ["March 2025"],
        "?day__year=2025&day__month=3": ["March 1", "March 9"],
    }
    for query, expected in pages.items():
        cl = admin_client.get("/admin/guard/refusal/" + query).context["cl"]
        hierarchy = shown(cl)
        assert hierarchy == as_django_would(cl), query
        assert titles(hierarchy) == expected, query


def test_no_query_of_the_hierarchy_calls_python_per_row(
    admin_client: Client, tenants: tuple[Tenant, Tenant]
) -> None:
    """SQLite runs Django's date functions (``django_datetime_trunc``, ``django_date_trunc``)
    as Python, once per row they read."""
    for url in (
        CHECKS,
        CHECKS + "?created_at__year=2025",
        CHECKS + "?created_at__year=2025&created_at__month=3",
        "/admin/guard/refusal/",
        "/admin/guard/refusal/?day__year=2025",
    ):
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200, url
        called = [q["sql"] for q in captured.captured_queries if "django_date" in q["sql"]]
        assert not called, (url, called)


def test_more_periods_than_it_probes_are_djangos_to_list(
    tenants: tuple[Tenant, Tenant],
) -> None:
    """A year and more of days (not what the hierarchy asks) is Django's own query."""
    days = (CREATED[-1].date() - CREATED[0].date()).days
    assert days > MAX_PROBES
    probed = LivenessCheck.objects.all()._chain()  # type: ignore[attr-defined]  # private: not in django-stubs
    probed.__class__ = IndexedDates
    expected = list(LivenessCheck.objects.datetimes("created_at", "day"))
    assert list(probed.datetimes("created_at", "day")) == expected
    assert list(probed.datetimes("created_at", "month")) == list(
        LivenessCheck.objects.datetimes("created_at", "month")
    )


def test_the_unfiltered_list_reads_its_first_and_last_dates_as_ends_of_the_index(
    admin_client: Client, tenants: tuple[Tenant, Tenant]
) -> None:
    """Django asks MIN and MAX in one query, which SQLite answers by reading every row (0.42 s
    over 247,000 records); each alone is one step along the index."""
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(CHECKS)
    assert response.status_code == 200
    queries = [q["sql"] for q in captured.captured_queries]
    assert not [q for q in queries if "MIN(" in q and "MAX(" in q]
    ends = [q for q in queries if q.endswith("LIMIT 1") and "ORDER BY" in q and "WHERE" in q]
    assert ends
    with connection.cursor() as cursor:
        for query in ends:
            cursor.execute("EXPLAIN QUERY PLAN " + query)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "INDEX" in plan and "TEMP B-TREE" not in plan, (query, plan)
    assert titles(shown(response.context["cl"])) == ["2024", "2025", "2026"]
