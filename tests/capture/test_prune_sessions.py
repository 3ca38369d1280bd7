"""manage.py prune_sessions, and the sessions' rate windows, which expire on their own."""

from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import HashId
from capture.management.commands.prune_sessions import BATCH
from capture.models import CaptureSession
from capture.service import QUALITY_SCOPE, SELFIE_SCOPE, open_session
from ml import headturn
from tests.conftest import database_url, run_on_database


def test_prune_sessions(make_tenant: Any) -> None:
    tenant, _ = make_tenant()
    credential = HashId.objects.get(tenant=tenant)
    old, new = open_session(tenant, credential).session, open_session(tenant, credential).session
    CaptureSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    call_command("prune_sessions", "--days", "1")
    assert list(CaptureSession.objects.values_list("pk", flat=True)) == [new.pk]


def test_a_backlog_of_more_than_a_batch_is_all_deleted_a_batch_at_a_time(
    make_tenant: Any,
) -> None:
    """Two batches and one session more past retention: every one deleted, one DELETE (its
    own transaction) per BATCH; the sessions inside retention kept, one of them expiring
    before the old ones do. One DELETE of 1,200,000 old sessions held SQLite's write lock 20 s:
    selfies meanwhile got 503."""
    tenant, _ = make_tenant()
    now = timezone.now()
    CaptureSession.objects.bulk_create(
        CaptureSession(tenant=tenant, token_digest=str(i), expires_at=now)
        for i in range(2 * BATCH + 3)
    )
    kept = list(CaptureSession.objects.order_by("pk").values_list("pk", flat=True)[:2])
    CaptureSession.objects.exclude(pk__in=kept).update(created_at=now - timedelta(days=31))
    CaptureSession.objects.filter(pk=kept[1]).update(
        created_at=now - timedelta(days=30) + timedelta(minutes=1),
        expires_at=now - timedelta(days=40),
    )
    table = CaptureSession._meta.db_table
    out = StringIO()
    with CaptureQueriesContext(connection) as captured:
        call_command("prune_sessions", "--days", "30", stdout=out)
    deletes = [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith(f'DELETE FROM "{table}"')
    ]
    assert len(deletes) == 3, [sql[:100] for sql in deletes]
    assert sorted(CaptureSession.objects.values_list("pk", flat=True)) == sorted(kept)
    assert out.getvalue().startswith(
        f"deleted {2 * BATCH + 1} capture session(s) older than 30 day(s);"
    )


def test_prune_sessions_takes_the_face_out_of_the_challenges_left_running(
    make_tenant: Any,
) -> None:
    """A challenge left running past its session's expiry is never fed again: its judge's
    face (landmarks, box, poses) goes at the next prune, its steps and times stay. A session
    still running keeps it (its judge needs it); a poll read before the strip cannot write the
    face back (challenge_version moved on)."""
    tenant, _ = make_tenant()
    credential = HashId.objects.get(tenant=tenant)
    left, running = (
        open_session(tenant, credential).session,
        open_session(tenant, credential).session,
    )
    face = headturn.HeadTurnJudge(("turn_left", "turn_right", "look_up")).to_state()
    CaptureSession.objects.update(challenge="running", challenge_judge={"judge": face})
    CaptureSession.objects.filter(pk=left.pk).update(expires_at=timezone.now())
    out = StringIO()
    call_command("prune_sessions", stdout=out)
    assert out.getvalue().strip() == (
        "deleted 0 capture session(s) older than 90 day(s); 1 expired challenge(s) stripped of "
        "the face's landmarks"
    )
    left_judge = CaptureSession.objects.get(pk=left.pk)
    assert left_judge.challenge_judge == {"judge": headturn.without_face(face)}
    assert left_judge.challenge_version == left.challenge_version + 1
    assert CaptureSession.objects.get(pk=running.pk).challenge_judge == {"judge": face}
    call_command("prune_sessions", stdout=out)
    assert (
        out.getvalue().strip().endswith("0 expired challenge(s) stripped of the face's landmarks")
    )


def test_prune_sessions_refuses_days_no_date_can_reach(db: None) -> None:
    """Refused, not an OverflowError's traceback."""
    with pytest.raises(CommandError, match="must be 0 to 36500"):
        call_command("prune_sessions", "--days", "99999999999")


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_a_sessions_rate_windows_go_once_they_end(vendor: str, tmp_path: Path) -> None:
    """Two sessions' quality (per second) and selfie (per minute) windows: a scope's windows
    before the previous one are deleted as a new one starts (tests/capture/session_windows.py).
    Before, every window stayed until prune_checks deleted those over 24 h old, long after its
    session had expired (SESSION_TTL_S) or been pruned: about 1.6 rows per session walk."""
    with database_url(vendor, tmp_path, "facia_windows") as url:
        outcome = run_on_database("tests.capture.session_windows", url)
    assert outcome["vendor"] == vendor
    quality, selfie = QUALITY_SCOPE, SELFIE_SCOPE
    assert outcome["steps"] == [
        [[quality, "A", 0, 2], [selfie, "A", 0, 1]],
        # The previous window is kept (as the login throttle's, which reads it).
        [[quality, "A", 0, 2], [quality, "B", 1, 1], [selfie, "A", 0, 1]],
        [[quality, "B", 1, 1], [quality, "B", 2, 1], [selfie, "A", 0, 1]],
        [[quality, "B", 120, 1], [selfie, "B", 120, 1]],
    ]
