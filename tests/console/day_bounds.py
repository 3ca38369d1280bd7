"""The console's day figures (the index's today, a tenant's usage days) of check records one
microsecond either side of UTC midnights, against DATABASE_URL; as JSON. Run in a subprocess
by tests/console/test_usage.py for PostgreSQL (its session's time zone decides a cast's day),
and called in-process for SQLite."""

import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

DAY = date(2026, 3, 1)  # the day after February's last, in a year with no 29th
MIDNIGHT = datetime(2026, 3, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)
# When each record was created, and how many: the last instant of a day, the first of the next.
CREATED = [
    (MIDNIGHT - TICK, 1),  # 2026-02-28 23:59:59.999999
    (MIDNIGHT, 2),  # 2026-03-01 00:00:00
    (MIDNIGHT + timedelta(days=1) - TICK, 4),  # 2026-03-01 23:59:59.999999
    (MIDNIGHT + timedelta(days=1), 8),  # 2026-03-02 00:00:00
]


def figures() -> dict[str, Any]:
    """Seeds the records (a tenant of its own), then what the index and the usage page count."""
    from django.db import connection

    from accounts.models import Tenant
    from console import overview
    from console.usage import Span, daily_usage
    from liveness.models import LivenessCheck

    tenant = Tenant.objects.create(name=f"bounds-{connection.vendor}")
    for when, count in CREATED:
        made = [
            LivenessCheck.insert(tenant=tenant, is_live=True, latency_ms=1.0) for _ in range(count)
        ]
        LivenessCheck.objects.filter(pk__in=made).update(created_at=when)
    span = Span(DAY - timedelta(days=2), DAY + timedelta(days=2))
    return {
        "vendor": connection.vendor,
        "today": overview._checks(DAY)["total"],
        "usage": {f"{d.day}": d.live for d in daily_usage(tenant, span)},
        "one_day": [d.live for d in daily_usage(tenant, Span(DAY, DAY))],
    }


# What every database must answer: each record on the UTC day its instant falls in.
EXPECTED = {
    "today": 6,
    "usage": {"2026-02-27": 0, "2026-02-28": 1, "2026-03-01": 6, "2026-03-02": 8, "2026-03-03": 0},
    "one_day": [6],
}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(json.dumps(figures()))


if __name__ == "__main__":
    main()
