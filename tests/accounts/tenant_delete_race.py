"""A tenant deleted while one of its checks runs, on PostgreSQL (DATABASE_URL); the outcome
as JSON. Run by tests/accounts/test_tenant_delete.py in a subprocess, so that the database
gets a fresh Django setup (as tests/accounts/quota_race.py).

The check is sent from inside the deletion's transaction, once its checks and hash_ids are
deleted and before its row is (``post_delete`` of the hash_id), and the deletion goes on
once the check has answered or waits on a lock: the window in which a check's unit and
record could commit between the two."""

import json
import os
import threading
from typing import Any

WAIT_S = 60


def race() -> dict[str, object]:
    from django.db import connections
    from django.db.models.signals import post_delete
    from django.test import Client

    from accounts.models import HashId, Tenant
    from liveness.models import LivenessCheck
    from tests.races import checking_tenant, waits_on_a_lock

    tenant, body = checking_tenant("leaving")
    answered: dict[str, Any] = {}
    done = threading.Event()

    def check() -> None:
        try:
            response = Client().post("/liveness", data=body, content_type="application/json")
            answered["status"] = response.status_code
        finally:
            connections.close_all()
            done.set()

    def meanwhile(**kwargs: Any) -> None:
        thread = threading.Thread(target=check)
        answered["thread"] = thread
        thread.start()
        while not done.wait(0.01) and not waits_on_a_lock():
            pass

    post_delete.connect(meanwhile, sender=HashId)
    try:
        Tenant.objects.filter(pk=tenant.pk).delete()
        deleted = "deleted"
    except Exception as exc:
        deleted = type(exc).__name__
    answered["thread"].join(WAIT_S)
    return {
        "vendor": connections["default"].vendor,
        "deletion": deleted,
        "check": answered.get("status"),
        "tenant_left": Tenant.objects.filter(pk=tenant.pk).exists(),
        "records_left": LivenessCheck.objects.filter(tenant_id=tenant.pk).count(),
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(race()))


if __name__ == "__main__":
    main()
