"""reset_quotas while a check of the tenant runs, on PostgreSQL (DATABASE_URL); the ledger as
JSON. Run by tests/accounts/test_reset_quotas.py in a subprocess, so that the database gets a
fresh Django setup (as tests/accounts/quota_race.py).

The check is sent just before the reset's UPDATE runs (``execute_wrapper``), after the
tenants were read for the history entry, and the reset goes on once the check has answered
or waits on a lock: the window in which a unit could be taken between the read and the
reset."""

import json
import os
import re
import threading
from io import StringIO
from typing import Any

WAIT_S = 60


def race() -> dict[str, object]:
    from django.contrib.admin.models import LogEntry
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    from liveness.models import LivenessCheck
    from tests.races import checking_tenant, waits_on_a_lock

    tenant, body = checking_tenant("reset")
    statuses: list[int] = []
    done = threading.Event()

    def check() -> None:
        try:
            response = Client().post("/liveness", data=body, content_type="application/json")
            statuses.append(response.status_code)
        finally:
            connections.close_all()
            done.set()

    check()  # one unit used before the reset
    done.clear()

    threads: list[threading.Thread] = []

    def before_the_reset(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not threads and re.search(r'SET "requests_used" = ', sql):
            threads.append(threading.Thread(target=check))
            threads[0].start()
            while not done.wait(0.01) and not waits_on_a_lock():
                pass
        return execute(sql, params, many, context)

    with connection.execute_wrapper(before_the_reset):
        call_command("reset_quotas", tenant=[tenant.name], stdout=StringIO())
    threads[0].join(WAIT_S)
    tenant.refresh_from_db()
    entries = LogEntry.objects.filter(object_id=str(tenant.pk))
    found = (re.search(r"\((\d+) used before\)", e.change_message) for e in entries)
    return {
        "vendor": connections["default"].vendor,
        "statuses": statuses,
        "used_before_reset": [int(m.group(1)) for m in found if m],
        "used_now": tenant.requests_used,
        "records": LivenessCheck.objects.filter(tenant=tenant, refused_code="").count(),
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(race()))


if __name__ == "__main__":
    main()
