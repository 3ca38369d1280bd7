"""GET /sessions/{id}: the session's state and verdict, read with its hash_id (Django's test
client, real engine)."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.client import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import HashId
from capture import service
from capture.models import CaptureSession
from guard.models import Refusal
from liveness.models import LivenessCheck
from tests.capture.sessions import open_session, verdict

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_reading_a_verdict_counts_its_refusals(make_tenant: Any, client: Client) -> None:
    """GET /sessions/{id} is admitted as /liveness is: its 401s count as /liveness's do."""
    tenant, secret = make_tenant()
    sid = open_session(client, secret)["session_id"]
    read = client.get(f"/sessions/{sid}", HTTP_X_HASH_ID="nope", REMOTE_ADDR="203.0.113.57")
    assert read.status_code == 401
    rows = Refusal.objects.values_list("status", "code", "tenant_id", "client", "hits")
    assert list(rows) == [(401, "invalid_credentials", 0, "203.0.113.0/24", 1)]


def written(queries: CaptureQueriesContext) -> list[str]:
    """The statements that wrote, as verb and table."""
    verbs = ("INSERT", "UPDATE", "DELETE")
    return [" ".join(q["sql"].split()[:2]) for q in queries if q["sql"].startswith(verbs)]


def test_a_read_writes_nothing_but_a_spent_held_selfies_verdict_once(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """GET /sessions/{id} writes no session (``expired`` is read from expires_at, never
    stored), except to decide a held selfie whose failed challenge has no try left under the
    CAPTURE_CHALLENGE_TRIES now: one conditional UPDATE of the session and one of its check
    record, once; every later read finds it done and writes nothing (the same answer)."""
    from accounts.models import WHEN_UNSURE
    from capture.models import FAILED

    tenant, secret = make_tenant(challenge=WHEN_UNSURE)
    credential = HashId.objects.get(tenant=tenant)
    sessions = {name: service.open_session(tenant, credential).session for name in "ODEH"}
    past = timezone.now() - timedelta(seconds=1)
    CaptureSession.objects.filter(pk=sessions["E"].pk).update(expires_at=past)
    CaptureSession.objects.filter(pk=sessions["D"].pk).update(
        state=CaptureSession.DONE, is_live=True, score=0.9, finished_at=timezone.now()
    )
    check = LivenessCheck.insert(tenant_id=tenant.pk, is_live=False, score=0.5, latency_ms=1.0)
    CaptureSession.objects.filter(pk=sessions["H"].pk).update(
        score=0.5,
        capture="frame",
        frames=1,
        selfie_check_id=check,
        challenge=FAILED,
        challenge_code="step_timeout",
        challenge_tries=1,
    )
    settings.CAPTURE_CHALLENGE_TRIES = 1  # lowered after its failure: no try left
    answers = {}
    for name, session in sessions.items():
        with CaptureQueriesContext(connection) as queries:
            answers[name] = verdict(client, str(session.pk), secret).json()
        expected = ['UPDATE "capture_capturesession"', 'UPDATE "liveness_livenesscheck"']
        assert written(queries) == (expected if name == "H" else []), name
    assert [answers[name]["state"] for name in "ODEH"] == ["open", "done", "expired", "done"]
    assert answers["H"]["liveness_result"] == {"is_live": 0, "liveness_score": 0.5}
    with CaptureQueriesContext(connection) as queries:
        again = verdict(client, str(sessions["H"].pk), secret).json()
    assert written(queries) == [] and again == answers["H"]
    assert LivenessCheck.objects.get(pk=check).is_live is False
