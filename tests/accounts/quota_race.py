"""Run concurrent quota reservations against DATABASE_URL and print the outcome as JSON.

Used by tests/accounts/test_quota.py in a subprocess, so that each database gets a fresh
Django setup.
"""

import argparse
import json
import os
import uuid


def race(workers: int, limit: int) -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connections

    from accounts.models import Tenant
    from tests.races import at_once

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name=f"race-{uuid.uuid4().hex}", request_limit=limit)
    results, errors = at_once(lambda: Tenant.reserve_unit(tenant.pk), workers)
    tenant.refresh_from_db()
    return {
        "vendor": connections["default"].vendor,
        "reserved": sum(results),
        "refused": len(results) - sum(results),
        "requests_used": tenant.requests_used,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(race(args.workers, args.limit)))


if __name__ == "__main__":
    main()
