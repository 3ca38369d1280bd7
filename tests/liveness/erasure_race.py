"""A check and its stored Idempotency-Key answer committed while a deletion of their tenant's
records runs, against DATABASE_URL (PostgreSQL: SQLite's write lock lets nothing commit
meanwhile); what is left as JSON. The deletion is held right after its first statement that
deletes rows until the new check and answer are committed, the interleaving that 250 keyed
requests racing 25 deletions met 3 times. Run by tests/liveness/test_erasure.py in a
subprocess, so that the database gets a fresh Django setup (as erasure_walk.py)."""

import json
import os
import threading
from typing import Any

WAIT_S = 60


def race() -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from accounts.models import Tenant
    from liveness.models import IdempotentAnswer, LivenessCheck

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name="race")

    def answered(key: str) -> int:
        """A check record and the answer stored for its key, in one transaction (as
        liveness.checks.record stores them)."""
        with transaction.atomic():
            check = LivenessCheck.insert(tenant=tenant, request_id=key, latency_ms=1.0, score=0.9)
            IdempotentAnswer.objects.create(
                tenant=tenant,
                key_digest=key,
                body_digest="b",
                claim="c",
                status=201,
                answer='{"score": 0.9}',
                created_at=timezone.now(),
                liveness_check_id=check,
            )
        return check

    answered("erased")
    paused, written = threading.Event(), threading.Event()
    deleted: dict[str, Any] = {}

    def held(execute: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
        result = execute(sql, params, many, ctx)
        if "DELETE" in sql and not paused.is_set():
            paused.set()
            written.wait(WAIT_S)
        return result

    def erase() -> None:
        try:
            with connection.execute_wrapper(held):
                deleted["counts"] = LivenessCheck.objects.filter(tenant__name="race").delete()[1]
        finally:
            paused.set()
            connections.close_all()

    eraser = threading.Thread(target=erase)
    eraser.start()
    paused.wait(WAIT_S)
    new = answered("new")
    written.set()
    eraser.join(WAIT_S)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM liveness_idempotentanswer a LEFT JOIN liveness_livenesscheck c"
            " ON c.id = a.liveness_check_id WHERE c.id IS NULL"
        )
        (orphans,) = cursor.fetchone()
    return {
        "vendor": connections["default"].vendor,
        "deleted": deleted.get("counts"),
        "answers without their record": orphans,
        "answers left": sorted(IdempotentAnswer.objects.values_list("key_digest", flat=True)),
        "new record left": LivenessCheck.objects.filter(pk=new).exists(),
        "no record chosen": LivenessCheck.objects.filter(pk__in=[]).delete(),
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(race()))


if __name__ == "__main__":
    main()
