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
from capture import challenge, service
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


def statement(sql: str) -> str:
    """A query as its verb and table (a savepoint's as its verb)."""
    words = sql.split()
    if words[0] in ("SAVEPOINT", "RELEASE"):
        return words[0]
    return (
        f"SELECT {words[words.index('FROM') + 1]}" if words[0] == "SELECT" else " ".join(words[:2])
    )


def test_deciding_a_held_selfie_reads_the_session_only_once(
    make_tenant: Any, settings: Any
) -> None:
    """settle_held deciding a held selfie (here as a read or a retry does, its challenge failed
    with no try left): the session's conditional UPDATE, the record's UPDATE and the latency
    its log line repeats; the session is not read back (the UPDATE matched the version it was
    read at, and holds the row), yet the object says what the row says."""
    from accounts.models import WHEN_UNSURE
    from capture.models import FAILED

    tenant, _ = make_tenant(challenge=WHEN_UNSURE)
    opened = service.open_session(tenant, HashId.objects.get(tenant=tenant)).session
    check = LivenessCheck.insert(tenant_id=tenant.pk, is_live=False, score=0.5, latency_ms=7.0)
    CaptureSession.objects.filter(pk=opened.pk).update(
        score=0.5,
        capture="frame",
        frames=1,
        selfie_check_id=check,
        selfie_request_id="r1",
        challenge=FAILED,
        challenge_code="step_timeout",
        challenge_tries=1,
    )
    settings.CAPTURE_CHALLENGE_TRIES = 1
    session = CaptureSession.objects.select_related("tenant").get(pk=opened.pk)
    with CaptureQueriesContext(connection) as queries:
        assert challenge.decide_spent(session) is False
    assert [statement(q["sql"]) for q in queries] == [
        "SAVEPOINT",
        'UPDATE "capture_capturesession"',
        'UPDATE "liveness_livenesscheck"',
        'SELECT "liveness_livenesscheck"',
        "RELEASE",
    ]
    stored = CaptureSession.objects.get(pk=session.pk)
    columns = [field.attname for field in CaptureSession._meta.concrete_fields]
    assert [getattr(session, c) for c in columns] == [getattr(stored, c) for c in columns]
    assert (stored.state, stored.is_live) == (CaptureSession.DONE, False)


def test_head_answers_as_get_without_the_body(make_tenant: Any, client: Client) -> None:
    """RFC 9110 9.3.2: HEAD wherever GET is, as every other GET endpoint answers it. Its
    status and headers are GET's: 200, or the 401/404 of a wrong hash_id or session."""
    tenant, secret = make_tenant()
    sid = open_session(client, secret)["session_id"]
    got = verdict(client, sid, secret)
    head = client.head(f"/sessions/{sid}", HTTP_X_HASH_ID=secret)
    assert (head.status_code, head.content) == (200, b"")
    assert head["Content-Type"] == got["Content-Type"] == "application/json"
    assert head["Content-Length"] == got["Content-Length"]
    assert client.head(f"/sessions/{sid}", HTTP_X_HASH_ID="nope").status_code == 401
    other = "00000000-0000-4000-8000-000000000000"
    assert client.head(f"/sessions/{other}", HTTP_X_HASH_ID=secret).status_code == 404
    refused = client.delete(f"/sessions/{sid}", HTTP_X_HASH_ID=secret)
    assert (refused.status_code, refused["Allow"]) == (405, "GET, HEAD")
