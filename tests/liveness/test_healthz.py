"""GET /healthz, the livenessProbe: 503 until this process's engine is warm, then 200
``Process is live`` whatever the database says (restarting a pod cures no database; under
gunicorn the worker answers it itself: tests/system/test_faults_pg.py)."""

from typing import Any

import pytest

from accounts.models import Tenant
from liveness import runtime
from tests.liveness.test_status_check_disk_full import _fill as fill
from tests.liveness.test_status_check_disk_full import full_database

__all__ = ["full_database"]  # the fixture, shared


def test_starting_until_the_engine_is_warm(
    db: None, client: Any, warm_engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())
    starting = client.get("/healthz")
    assert (starting.status_code, starting.content) == (503, runtime.STARTING.encode())
    assert starting["Retry-After"] == "1"
    runtime.get_engine()
    assert client.get("/healthz").status_code == 200


def test_live_while_the_database_is_full(
    full_database: None, client: Any, warm_engine: None, tenant: tuple[Tenant, str]
) -> None:
    """/status_check says checks cannot be recorded (readiness: out of the Service); /healthz
    does not (liveness: no restart). It was /status_check for both: a 70 s PostgreSQL outage
    failed 3 livenessProbes and restarted every pod."""
    fill(tenant[0])
    assert client.get("/status_check").status_code == 503
    live = client.get("/healthz")
    assert (live.status_code, live.content) == (200, b"Process is live")
    assert live["Content-Type"] == "text/plain"
    head = client.head("/healthz")
    assert (head.status_code, head.content) == (200, b"")


def test_post_gets_our_json_405(db: None, client: Any) -> None:
    response = client.post("/healthz")
    assert (response.status_code, response["Allow"]) == (405, "GET, HEAD")
