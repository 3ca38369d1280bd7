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
import uuid
from typing import Any

WAIT_S = 60


def race() -> dict[str, object]:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections
    from django.db.models.signals import post_delete
    from django.test import Client

    from accounts.models import HashId, Tenant
    from liveness import runtime
    from liveness.models import LivenessCheck
    from ml.install import install_models
    from tests.conftest import LIVE_JPG, data_uri

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's
    call_command("migrate", verbosity=0)
    install_models(settings.MODEL_SOURCE, settings.MODEL_DIR)
    runtime.get_engine()
    tenant = Tenant.objects.create(name=f"leaving-{uuid.uuid4().hex}")
    body = json.dumps({"hash_id": HashId.issue(tenant).secret, "selfie_image": data_uri(LIVE_JPG)})
    answered: dict[str, Any] = {}
    done = threading.Event()

    def check() -> None:
        try:
            response = Client().post("/liveness", data=body, content_type="application/json")
            answered["status"] = response.status_code
        finally:
            connections.close_all()
            done.set()

    def waits_on_a_lock() -> bool:
        with connection.cursor() as cursor:  # inside a transaction: a fresh view each time
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return bool(cursor.fetchone()[0])

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
