"""What the race scripts share (a test runs each in a subprocess, after django.setup(), so
that its database gets a fresh Django setup): a tenant ready to check, calls released
together, and whether another connection waits on a lock."""

import json
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from accounts.models import Tenant

T = TypeVar("T")


def checking_tenant(prefix: str) -> tuple["Tenant", str]:
    """A new tenant with its /liveness body (a live dev image), on a migrated database with the
    engine loaded, so that the race measures the check and not a first request's start-up."""
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import HashId, Tenant
    from liveness import runtime
    from ml.install import install_models
    from tests.conftest import LIVE_JPG, data_uri

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's
    call_command("migrate", verbosity=0)
    install_models(settings.MODEL_SOURCE, settings.MODEL_DIR)
    runtime.get_engine()
    tenant = Tenant.objects.create(name=f"{prefix}-{uuid.uuid4().hex}")
    body = json.dumps({"hash_id": HashId.issue(tenant).secret, "selfie_image": data_uri(LIVE_JPG)})
    return tenant, body


def waits_on_a_lock() -> bool:
    """Whether another connection to this PostgreSQL database waits on a lock, read on this
    thread's connection (maybe inside a transaction: the snapshot is cleared for a fresh view)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return bool(cursor.fetchone()[0])


def at_once(call: Callable[[], T], workers: int) -> tuple[list[T], list[str]]:
    """``call`` in ``workers`` threads that a barrier releases together: what each returned,
    and the repr of what any raised (reported, not swallowed: the tests assert there are none).
    Each thread closes its database connections as it ends."""
    from django.db import connections

    barrier = threading.Barrier(workers)
    results: list[T] = []
    errors: list[str] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(call())
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
