"""POST /liveness with an Idempotency-Key: a retry gets the first answer without a second unit,
record or model run (liveness.idempotency)."""

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from accounts.models import Tenant
from guard.models import Refusal
from liveness import answers, runtime
from liveness.answers import Rejected
from liveness.checks import check_selfie
from liveness.idempotency import CLAIM_LEASE_S, Attempt, Key
from liveness.models import IdempotentAnswer, LivenessCheck
from telemetry import metrics
from tests.conftest import LIVE_JPG, SPOOF_JPG, b64, data_uri, database_url, run_on_database

pytestmark = pytest.mark.usefixtures("warm_engine")
KEY = "3f1c2a6e-6f0a-4a59-9d4e-5b3f1f0c9a11"


def post(client: Any, body: dict[str, Any], key: str | None = KEY, **extra: Any) -> Any:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    raw = json.dumps(body)
    return client.post("/liveness", data=raw, content_type="application/json", **headers, **extra)


def judged_so_far() -> float:
    """Checks the engine has judged in this process (facia_liveness_stage_seconds, "total")."""
    for family in metrics.STAGE_SECONDS.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("stage") == "total":
                return sample.value
    return 0.0


def spent(tenant: Tenant) -> tuple[int, int]:
    """(units used, check records) of ``tenant``."""
    tenant.refresh_from_db()
    return tenant.requests_used, LivenessCheck.objects.filter(tenant=tenant).count()


def blank_image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 320), (128, 128, 128)).save(buffer, format="PNG")
    return b64(buffer.getvalue())


def test_a_retry_gets_the_first_answer_and_spends_nothing(make_tenant: Any, client: Any) -> None:
    """The retry of a check that took the tenant's last unit: the same bytes, replayed, and
    neither a unit, a record nor an engine run (judged, it would be the quota's 429)."""
    tenant, secret = make_tenant(request_limit=1)
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    first = post(client, body)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    judged = judged_so_far()
    again = post(client, body)
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["X-Liveness-Profile"] == first["X-Liveness-Profile"]
    assert again["X-Liveness-Capture"] == first["X-Liveness-Capture"]
    assert again["X-Request-ID"] != first["X-Request-ID"]
    assert again["Cache-Control"] == "no-store"
    assert spent(tenant) == (1, 1)
    assert judged_so_far() == judged


def test_a_quality_refusal_is_replayed_too(make_tenant: Any, client: Any) -> None:
    """A gate's 422 writes a record (no unit): its retry writes none and runs no model."""
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": blank_image()}
    first = post(client, body)
    assert first.status_code == 422 and first.json()["code"] == "no_face"
    again = post(client, body)
    assert (again.status_code, again.content) == (422, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert spent(tenant) == (0, 1)


def test_a_kept_answer_is_rendered_once_and_sent_as_stored(
    make_tenant: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request's answer is rendered once, in the transaction that stores it, and
    that response is the one sent: a 201 and a gate's 422 send the stored bytes."""
    rendered: list[object] = []
    respond = answers.respond

    def counting(outcome: Any) -> Any:
        rendered.append(outcome)
        return respond(outcome)

    monkeypatch.setattr(answers, "respond", counting)
    tenant, secret = make_tenant()
    for image, status in ((data_uri(LIVE_JPG), 201), (blank_image(), 422)):
        rendered.clear()
        first = post(client, {"hash_id": secret, "selfie_image": image}, key=f"once-{status}")
        assert first.status_code == status
        assert len(rendered) == 1
        kept = IdempotentAnswer.objects.get(tenant=tenant, status=status)
        assert first.content == kept.answer.encode()
        assert {name: first[name] for name in kept.headers} == kept.headers


def test_an_answer_that_writes_nothing_is_not_kept(make_tenant: Any, client: Any) -> None:
    """A 400 (and a 429, a 503) records nothing: the key is free again, the retry judged."""
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": "not an image"}
    assert post(client, body).status_code == 400
    assert not IdempotentAnswer.objects.exists()
    again = post(client, body)
    assert again.status_code == 400 and "Idempotent-Replayed" not in again
    fixed = {**body, "selfie_image": data_uri(LIVE_JPG)}  # the key is free: no 422 "reused"
    assert post(client, fixed).status_code == 201
    assert post(client, fixed)["Idempotent-Replayed"] == "true"
    assert spent(tenant) == (1, 1)


def test_the_same_key_with_another_body_is_refused(make_tenant: Any, client: Any) -> None:
    tenant, secret = make_tenant()
    assert post(client, {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}).status_code == 201
    other = post(client, {"hash_id": secret, "selfie_image": data_uri(SPOOF_JPG)})
    assert other.status_code == 422
    assert other.json() == {
        "error": "This Idempotency-Key was sent with another request body; use a new key for "
        "a new check.",
        "code": "idempotency_key_reused",
    }
    assert spent(tenant) == (1, 1)


def test_the_keys_of_two_tenants_do_not_collide(make_tenant: Any, client: Any) -> None:
    first, first_secret = make_tenant("first")
    second, second_secret = make_tenant("second")
    bodies = [
        {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
        for secret in (first_secret, second_secret)
    ]
    for body in bodies:
        answer = post(client, body)
        assert answer.status_code == 201 and "Idempotent-Replayed" not in answer
    for body in bodies:  # each tenant's key still answers its own request
        assert post(client, body)["Idempotent-Replayed"] == "true"
    assert spent(first) == spent(second) == (1, 1)


def test_no_body_is_hashed_before_authentication(
    make_tenant: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown hash_id with a key: 401, its body never hashed (SHA-256 of a 16 MB body is
    21 ms, a third more than parsing it, which anyone could have the service spend). The
    same request from the tenant hashes it once. hashlib.sha256 is wrapped, not replaced."""
    hashed: list[int] = []
    sha256 = hashlib.sha256

    def counting(data: bytes = b"", **kwargs: Any) -> Any:
        hashed.append(len(data))
        return sha256(data, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting)
    _, secret = make_tenant()
    image = data_uri(LIVE_JPG)
    stranger = post(client, {"hash_id": "x" * 43, "selfie_image": image})
    assert stranger.status_code == 401
    assert not [size for size in hashed if size >= len(image)]
    assert post(client, {"hash_id": secret, "selfie_image": image}).status_code == 201
    assert len([size for size in hashed if size >= len(image)]) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", "del\x7f", "line\nbreak"])
def test_an_invalid_key_is_refused(make_tenant: Any, client: Any, key: str) -> None:
    tenant, secret = make_tenant()
    answer = post(client, {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}, key=key)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "Idempotency-Key must be 1 to 255 printable ASCII characters."
    }
    assert spent(tenant) == (0, 0)


def environ_key(*lines: bytes) -> str:
    """The Idempotency-Key a request with these header lines has in gunicorn's WSGI environ
    (its own parser and environ, in-process)."""
    from gunicorn.config import Config
    from gunicorn.http import wsgi
    from gunicorn.http.parser import RequestParser

    head = b"POST /liveness HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
    request = next(RequestParser(Config(), [head + b"".join(lines) + b"\r\n"], None))
    _, environ = wsgi.create(request, None, ("127.0.0.1", 1), ("127.0.0.1", 5001), Config())
    return str(environ["HTTP_IDEMPOTENCY_KEY"])


def test_two_keys_are_refused_not_joined_into_one(make_tenant: Any, client: Any) -> None:
    """Two Idempotency-Key headers reach the view as one value joined by a comma (gunicorn's
    environ), which is not the key "k1,k2" but two keys: refused, as is a comma in one key."""
    joined = environ_key(b"Idempotency-Key: k1\r\n", b"Idempotency-Key: k2\r\n")
    assert joined == "k1,k2"
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    for key in (joined, "k1, k2", ","):
        answer = post(client, body, key=key)
        assert answer.status_code == 400
        assert answer.json() == {"error": answers.IDEMPOTENCY_KEY_REPEATED}
    assert spent(tenant) == (0, 0) and not IdempotentAnswer.objects.exists()


@pytest.mark.parametrize("key", ["k", "x" * 255, "order 42: retry ~!@#$%^&*()"])
def test_a_valid_key_is_taken(make_tenant: Any, client: Any, key: str) -> None:
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    assert post(client, body, key=key).status_code == 201
    assert post(client, body, key=key)["Idempotent-Replayed"] == "true"


def age(seconds: float) -> None:
    """Every stored answer and claim made ``seconds`` older."""
    for row in IdempotentAnswer.objects.all():
        IdempotentAnswer.objects.filter(pk=row.pk).update(
            created_at=row.created_at - timedelta(seconds=seconds)
        )


def test_a_key_past_its_retention_is_judged_again(
    make_tenant: Any, client: Any, settings: Any
) -> None:
    settings.IDEMPOTENCY_KEY_TTL_S = 3600
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    assert post(client, body).status_code == 201
    age(3601)
    again = post(client, body)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert spent(tenant) == (2, 2)
    assert post(client, body)["Idempotent-Replayed"] == "true"  # the new answer is kept


def test_prune_checks_deletes_the_keys_past_their_retention(
    make_tenant: Any, client: Any, settings: Any
) -> None:
    settings.IDEMPOTENCY_KEY_TTL_S = 3600
    tenant, secret = make_tenant()
    for key in ("old", "new"):
        post(client, {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}, key=key)
        if key == "old":
            age(3601)
    out = StringIO()
    call_command("prune_checks", stdout=out)
    assert "1 expired idempotency key(s)" in out.getvalue()
    assert IdempotentAnswer.objects.count() == 1


def test_a_retry_while_the_first_is_judged_waits(make_tenant: Any, client: Any) -> None:
    """The first request's claim (a row without an answer): the retry is told to wait, and
    takes the key over once the claim is older than any living request."""
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    assert post(client, body).status_code == 201
    IdempotentAnswer.objects.update(status=None, answer="", claim="first-request")
    busy = post(client, body)
    assert busy.status_code == 409 and busy["Retry-After"] == "1"
    assert busy.json()["code"] == "idempotency_key_in_use"
    age(CLAIM_LEASE_S + 1)
    taken_over = post(client, body)
    assert taken_over.status_code == 201 and "Idempotent-Replayed" not in taken_over
    assert spent(tenant) == (2, 2)


class Failing:
    """Statements made to fail by a trigger (SQLite or PostgreSQL), as a full or broken
    database fails them: ``fail(table, event)``, then ``heal()``."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []

    def fail(self, table: str, event: str) -> None:
        name = f"fail_{table}_{event.lower()}"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE OR REPLACE FUNCTION provoked_failure() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'provoked failure'; END $$"
                )
                action = "FOR EACH ROW EXECUTE FUNCTION provoked_failure()"
            else:
                action = "BEGIN SELECT RAISE(ABORT, 'provoked failure'); END"
            cursor.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} {action}")
        self.made.append((name, table))

    def heal(self) -> None:
        on = connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            for name, table in self.made:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if on else ""))
        self.made.clear()
        runtime.forget()


@pytest.fixture
def failing(db: None) -> Iterator[Failing]:
    failing = Failing()
    yield failing
    failing.heal()


def test_a_record_that_fails_keeps_no_answer(
    make_tenant: Any, client: Any, failing: Failing
) -> None:
    """The check's INSERT fails after the unit was taken: the unit, the record and the answer
    are all rolled back, and the retry is judged (not a replay of an answer never sent)."""
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    failing.fail(LivenessCheck._meta.db_table, "INSERT")
    assert post(client, body).status_code == 503
    assert spent(tenant) == (0, 0)
    assert not IdempotentAnswer.objects.exists()
    failing.heal()
    again = post(client, body)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert post(client, body)["Idempotent-Replayed"] == "true"
    assert spent(tenant) == (1, 1)


def test_an_answer_that_cannot_be_kept_spends_no_unit(
    make_tenant: Any, client: Any, failing: Failing
) -> None:
    """Storing the answer fails: the unit and the record it shares a transaction with are
    rolled back (a committed unit always has its answer)."""
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    failing.fail(IdempotentAnswer._meta.db_table, "UPDATE")
    assert post(client, body).status_code == 503
    assert spent(tenant) == (0, 0)


def test_a_request_whose_claim_was_taken_over_spends_nothing(make_tenant: Any) -> None:
    """A request that outlived its claim (a retry took the key over after CLAIM_LEASE_S) may
    not store its answer over the retry's: its unit and record are rolled back, and it is
    answered 409 (its client's next retry gets the retry's answer)."""
    tenant, _ = make_tenant()
    key = Key("k" * 64, "b" * 64)
    attempt = Attempt(tenant, key)
    with pytest.raises(Rejected) as caught, attempt.claimed() as keep:
        IdempotentAnswer.objects.update(claim="the-retry")  # as _claim's takeover writes it
        check_selfie(tenant, data_uri(LIVE_JPG), "late", keep)
    assert caught.value.rejection.code == "idempotency_key_in_use"
    assert spent(tenant) == (0, 0)
    assert IdempotentAnswer.objects.get().claim == "the-retry"  # the retry's claim is left


@pytest.mark.parametrize("first_body", ["other", "same"])
def test_a_request_that_lost_the_race_for_its_key_is_answered_by_the_winners_body(
    make_tenant: Any, client: Any, first_body: str
) -> None:
    """Two requests with one key at once: the loser read no claim, then found the winner's
    row when claiming. With another body it was told 409 "retry", to get 422 on the retry;
    now 422 at once, as a request that reads the claim gets (409 for the same body)."""
    tenant, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    winner = {**body, "selfie_image": data_uri(SPOOF_JPG)} if first_body == "other" else body
    raw = json.dumps(body).encode()
    loser = Attempt(tenant, Key.of(KEY, raw))  # reads the key before the winner claims it
    assert loser.earlier_answer() is None
    assert post(client, winner).status_code == 201  # claims the key, then keeps its answer
    with pytest.raises(Rejected) as caught, loser.claimed():
        pass
    expected = "idempotency_key_reused" if first_body == "other" else "idempotency_key_in_use"
    assert caught.value.rejection.code == expected
    assert IdempotentAnswer.objects.get().status == 201  # the winner's answer is left
    assert spent(tenant) == (1, 1)


@pytest.mark.django_db(transaction=True)  # committed: the foreign key is checked at COMMIT
def test_a_key_claimed_for_a_tenant_deleted_meanwhile_gets_401(make_tenant: Any) -> None:
    """The tenant deleted between its authentication and the key's claim: the claim failed
    its foreign key, taken for a concurrent claim (409, retry); now the 401 the retry gets."""
    tenant, _ = make_tenant()
    attempt = Attempt(tenant, Key.of(KEY, b"{}"))
    Tenant.objects.filter(pk=tenant.pk).delete()
    with pytest.raises(Rejected) as caught, attempt.claimed():
        pass
    assert caught.value.rejection.code == "invalid_credentials"
    assert not IdempotentAnswer.objects.exists()
    # Counted with no tenant: a count under the deleted id would outlive it (forget_refusals).
    assert list(Refusal.objects.values_list("code", "tenant_id")) == [("invalid_credentials", 0)]


def test_no_key_no_query_of_the_keys(make_tenant: Any, client: Any) -> None:
    """Without the header no statement touches the stored answers."""
    tenant, secret = make_tenant()
    table = IdempotentAnswer._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        answer = post(client, {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}, key=None)
    assert answer.status_code == 201
    assert not [q for q in queries.captured_queries if table in q["sql"]]
    assert not IdempotentAnswer.objects.exists()


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_a_concurrent_pair_spends_one_unit(vendor: str, tmp_path: Path) -> None:
    """Two requests with one key at once: one judged, the other told to wait (or given the
    answer, had the first finished): one unit, one record, one answer kept."""
    with database_url(vendor, tmp_path, "facia_idem") as url:
        outcome = run_on_database("tests.liveness.idempotency_race", url)
    assert outcome["vendor"] == vendor
    assert outcome["errors"] == []
    assert sorted(outcome["statuses"]) in ([201, 201], [201, 409])
    assert outcome["replayed"] == (1 if sorted(outcome["statuses"]) == [201, 201] else 0)
    assert (outcome["requests_used"], outcome["checks"], outcome["answers"]) == (1, 1, 1)
