"""Two calibration switches of one tenant at once, on PostgreSQL (DATABASE_URL); what each
did and the tenant's state after, as JSON. Run by tests/calibration/test_switch_race.py in a
subprocess, so that the database gets a fresh Django setup (as tests/accounts/reset_race.py).

Each switch reads the tenant first (as the admin's view reads it for its page, and an upload
job when it begins); both start together (a ``threading.Barrier``), and each holds its first
write (``execute_wrapper``) until the other has reached its own or waits on a lock: the
window in which both decided from the same state."""

import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

WAIT_S = 60


def race(first: str, second: str) -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connection, connections
    from django.utils import timezone

    from accounts.models import Tenant
    from calibration.models import Calibration, NoShadow, discard_shadow, promote_shadow
    from tests.conftest import stored_calibration
    from tests.races import waits_on_a_lock

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name=f"switch-{uuid.uuid4().hex}", threshold=0.5)
    candidate = stored_calibration(tenant, threshold=0.61)
    candidate.shadow(timezone.now(), timezone.now() + timedelta(days=1))
    newer = stored_calibration(tenant, threshold=0.7)  # an upload job's, not yet in shadow

    def job(stale: Tenant) -> str:
        newer.tenant = stale  # the job's tenant, read when it began
        newer.shadow(timezone.now(), timezone.now() + timedelta(days=1))
        return "shadowed"

    def promote(stale: Tenant) -> str:
        return "promoted" if promote_shadow(stale, candidate.pk) else "gone"

    def discard(stale: Tenant) -> str:
        return "discarded" if discard_shadow(stale, candidate.pk) else "gone"

    actions: dict[str, Callable[[Tenant], str]] = {
        "promote": promote,
        "discard": discard,
        "job": job,
    }
    start = threading.Barrier(2, timeout=WAIT_S)
    arrived = [threading.Event(), threading.Event()]
    done = [threading.Event(), threading.Event()]
    results: list[str] = ["", ""]

    def held(i: int) -> Any:
        def before_writing(execute: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
            if sql.startswith("UPDATE") and not arrived[i].is_set():
                arrived[i].set()
                other = 1 - i
                while not (arrived[other].wait(0.01) or done[other].is_set()):
                    if waits_on_a_lock():
                        break
            return execute(sql, params, many, ctx)

        return before_writing

    def switch(i: int, name: str) -> None:
        try:
            stale = Tenant.objects.get(pk=tenant.pk)
            start.wait()
            with connection.execute_wrapper(held(i)):
                try:
                    results[i] = actions[name](stale)
                except NoShadow:
                    results[i] = "no shadow"
        finally:
            done[i].set()
            connections.close_all()

    threads = [threading.Thread(target=switch, args=(i, n)) for i, n in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    tenant.refresh_from_db()
    candidate.refresh_from_db()
    return {
        "vendor": connections["default"].vendor,
        "results": results,
        "active": (tenant.calibration or {}).get("id"),
        "shadow": (tenant.shadow_calibration or {}).get("id"),
        "threshold": tenant.threshold,
        "candidate": candidate.pk,
        "newer": newer.pk,
        "candidate_set_aside": candidate.reverted_at is not None,
        "newer_set_aside": Calibration.objects.get(pk=newer.pk).reverted_at is not None,
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(race(sys.argv[1], sys.argv[2])))


if __name__ == "__main__":
    main()
