"""An erasure request (GDPR Art. 17): deleting a check record, whichever way (the admin's delete
page, its "Delete selected", the ORM, ``prune_checks``), deletes in the same transaction the rows
that copied its outcome: the capture session that took its verdict and score, and the answer
stored for its Idempotency-Key. Before, both outlived the record, the session for
LIVENESS_RETENTION_DAYS. The rows come from real requests (the test client, the real engine);
tests/liveness/erasure_walk.py does the same deletions on SQLite and PostgreSQL."""

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.deletion import Collector
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Tenant
from capture.models import CaptureSession
from guard.hierarchy import IndexedDates
from liveness.models import IdempotentAnswer, LivenessCheck
from tests.capture.sessions import open_session, post
from tests.conftest import LIVE_JPG, data_uri, database_url, run_on_database
from tests.guard.test_bulk_delete import items, staff

pytestmark = pytest.mark.usefixtures("warm_engine")
CHECKS = "/admin/liveness/livenesscheck/"
# What a decided or expired challenge's judge keeps: steps, phase (and the one it failed in),
# result code, times, counts.
JUDGE_KEPT = sorted(
    ["steps", "phase", "failed_in", "index", "done", "code", "phase_t", "phase_frames", "frames"]
    + ["seen_t", "last_t", "v"]
)


@dataclass
class Subject:
    """One person's two selfies: one through a capture session, one through /liveness with an
    Idempotency-Key; each wrote a check record and a copy of its outcome."""

    session: CaptureSession
    session_check: int
    answer: IdempotentAnswer
    keyed_check: int

    @property
    def checks(self) -> list[int]:
        return [self.session_check, self.keyed_check]

    def left(self) -> dict[str, bool]:
        """Which of its rows are still stored."""
        return {
            "session": CaptureSession.objects.filter(pk=self.session.pk).exists(),
            "answer": IdempotentAnswer.objects.filter(pk=self.answer.pk).exists(),
            "checks": LivenessCheck.objects.filter(pk__in=self.checks).exists(),
        }


ALL_KEPT = {"session": True, "answer": True, "checks": True}
NONE_KEPT = {"session": False, "answer": False, "checks": False}


def subject(client: Client, secret: str) -> Subject:
    opened = open_session(client, secret)
    url = f"/sessions/{opened['session_id']}/selfie"
    selfie = post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, opened["token"])
    assert selfie.status_code == 202, selfie.content
    key = str(uuid.uuid4())
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    keyed = post(client, "/liveness", body, HTTP_IDEMPOTENCY_KEY=key)
    assert keyed.status_code == 201, keyed.content
    session = CaptureSession.objects.get(pk=opened["session_id"])
    session_check = LivenessCheck.objects.get(request_id=selfie["X-Request-ID"])
    assert (session_check.score, session_check.pk) == (session.score, session.selfie_check_id)
    keyed_check = LivenessCheck.objects.get(request_id=keyed["X-Request-ID"])
    digest = hashlib.sha256(key.encode()).hexdigest()
    answer = IdempotentAnswer.objects.get(key_digest=digest)
    assert json.loads(answer.answer) == keyed.json()
    return Subject(session, session_check.pk, answer, keyed_check.pk)


@pytest.fixture
def two(make_tenant: Any, client: Client) -> tuple[Subject, Subject]:
    """Two subjects of one tenant: the first's erasure is asked, the second's rows stay."""
    _, secret = make_tenant()
    return subject(client, secret), subject(client, secret)


def test_the_delete_page_of_one_check_counts_and_deletes_its_session_and_answer(
    two: tuple[Subject, Subject], admin_client: Client
) -> None:
    erased, kept = two
    for check, copy in ((erased.session_check, "Capture sessions"),):
        page = admin_client.get(f"{CHECKS}{check}/delete/").content.decode()
        assert f"{copy}: 1" in items(page)
    page = admin_client.get(f"{CHECKS}{erased.keyed_check}/delete/").content.decode()
    assert "Idempotency-Key answers: 1" in items(page)
    for check in erased.checks:
        assert admin_client.post(f"{CHECKS}{check}/delete/", {"post": "yes"}).status_code == 302
    assert erased.left() == NONE_KEPT
    assert kept.left() == ALL_KEPT


def test_delete_selected_deletes_the_sessions_and_answers_of_the_selected_checks(
    two: tuple[Subject, Subject], admin_client: Client
) -> None:
    """Through the list's queryset, whose class the date hierarchy replaces (guard.hierarchy):
    the check records' own ``delete`` must survive that."""
    erased, kept = two
    selected = {"action": "delete_selected", "_selected_action": [str(c) for c in erased.checks]}
    page = admin_client.post(CHECKS, selected).content.decode()
    assert "Capture sessions: 1" in items(page)
    assert "Idempotency-Key answers: 1" in items(page)
    assert admin_client.post(CHECKS, {**selected, "post": "yes"}).status_code == 302
    assert erased.left() == NONE_KEPT
    assert kept.left() == ALL_KEPT


def test_a_user_who_may_not_delete_sessions_may_not_delete_a_check_that_has_one(
    two: tuple[Subject, Subject],
) -> None:
    """As on Django's page: each model the deletion takes rows of needs its permission."""
    erased, _ = two
    client = staff("liveness.view_livenesscheck", "liveness.delete_livenesscheck")
    url = f"{CHECKS}{erased.session_check}/delete/"
    assert "capture session" in items(client.get(url).content.decode())
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert erased.left() == ALL_KEPT


def test_the_orm_deletes_the_copies_with_the_records_and_counts_them(
    two: tuple[Subject, Subject],
) -> None:
    erased, kept = two
    one = LivenessCheck.objects.get(pk=erased.session_check)
    assert one.delete() == (2, {"capture.CaptureSession": 1, "liveness.LivenessCheck": 1})
    assert LivenessCheck.objects.filter(pk=erased.keyed_check).delete() == (
        2,
        {"liveness.IdempotentAnswer": 1, "liveness.LivenessCheck": 1},
    )
    assert erased.left() == NONE_KEPT
    assert kept.left() == ALL_KEPT


def test_prune_checks_deletes_the_copies_of_old_records_without_loading_a_record(
    two: tuple[Subject, Subject],
) -> None:
    erased, kept = two
    old = timezone.now() - timedelta(days=31)
    LivenessCheck.objects.filter(pk__in=erased.checks).update(created_at=old)
    out = StringIO()
    with CaptureQueriesContext(connection) as queries:
        call_command("prune_checks", "--days", "30", stdout=out)
    assert "deleted 2 check(s) older than 30 day(s) and 2 row(s) copying them" in out.getvalue()
    assert erased.left() == NONE_KEPT
    assert kept.left() == ALL_KEPT
    loads = [q["sql"] for q in queries.captured_queries if '"latency_ms"' in q["sql"]]
    assert loads == []  # no record read whole: ids only, the copies by subquery


def test_every_key_to_a_check_record_leaves_the_records_deletable_in_bulk(db: None) -> None:
    """Django deletes the records with one DELETE (no row loaded) only while every key to
    them is DO_NOTHING; a cascade would load each record a prune or a "Select all" deletes."""
    assert Collector(using="default").can_fast_delete(LivenessCheck.objects.all())
    indexed = LivenessCheck.objects.all()
    assert not isinstance(indexed, IndexedDates) and hasattr(indexed, "copies")


def test_a_tenants_deletion_takes_the_copies_too(two: tuple[Subject, Subject]) -> None:
    erased, _ = two
    Tenant.objects.get(pk=erased.session.tenant_id).delete()
    assert erased.left() == NONE_KEPT


def test_the_sessions_list_finds_a_session_by_its_selfies_request_id(
    two: tuple[Subject, Subject], admin_client: Client
) -> None:
    """The request id an erasure request names finds the session that copied its verdict."""
    erased, kept = two
    listed = admin_client.get(
        "/admin/capture/capturesession/", {"q": erased.session.selfie_request_id}
    )
    shown = re.findall(
        r"/admin/capture/capturesession/([0-9a-f-]+)/change/", listed.content.decode()
    )
    assert shown == [str(erased.session.pk)]
    assert str(kept.session.pk) not in listed.content.decode()


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_the_deletions_and_the_strip_on_each_database(vendor: str, tmp_path: Path) -> None:
    """The same deletions where the SQL differs: the copies by subquery, the expired
    challenges' face taken out by one UPDATE (SQLite's json_remove, PostgreSQL's jsonb)."""
    with database_url(vendor, tmp_path, "facia_erasure") as url:
        outcome = run_on_database("tests.liveness.erasure_walk", url)
    assert outcome == {
        "vendor": vendor,
        "orm": {
            "capture.CaptureSession": 1,
            "liveness.IdempotentAnswer": 1,
            "liveness.LivenessCheck": 2,
        },
        "one by one": [
            {"capture.CaptureSession": 1, "liveness.LivenessCheck": 1},
            {"liveness.IdempotentAnswer": 1, "liveness.LivenessCheck": 1},
        ],
        "left after the ORM": ["kept", "old"],
        "left after prune_checks": ["kept"],
        "sessions left": ["expired", "kept", "running"],
        "judge keys": {"expired": JUDGE_KEPT, "running": "all"},
        "stripped": 1,
        "unsaved": "LivenessCheck object can't be deleted because its id attribute is set to None.",
    }


def test_a_check_and_answer_committed_during_an_erasure_are_kept_or_deleted_together(
    tmp_path: Path,
) -> None:
    """PostgreSQL: a check and its stored answer committed while the tenant's records are being
    deleted, right after the deletion's first DELETE (tests/liveness/erasure_race.py). Both
    are kept (the deletion's snapshot predates them), never the answer alone: a stored answer
    whose record was erased would still be replayed (201, Idempotent-Replayed)."""
    with database_url("postgresql", tmp_path, "facia_erasure_race") as url:
        outcome = run_on_database("tests.liveness.erasure_race", url)
    assert outcome == {
        "vendor": "postgresql",
        "deleted": {"liveness.IdempotentAnswer": 1, "liveness.LivenessCheck": 1},
        "answers without their record": 0,
        "answers left": ["new"],
        "new record left": True,
        "no record chosen": [0, {}],
    }
