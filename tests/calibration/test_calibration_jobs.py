"""The admin's calibration upload is a background job: the request only checks the zip's
directory and queues it (no image decoded in the serving worker), the task worker runs it
(here on the ``local`` queue, in this process), and the page shows its progress and result.
Hostile zips are refused from the central directory, before any member is read."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import random
import re
import struct
import traceback
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult
from gunicorn.dirty.errors import DirtyAppError, DirtyConnectionError

from accounts.models import Tenant
from bench.corpus import jpeg_with_empty_scans, png_extra_idat
from bench.zip_directory import empty_entries
from calibration import calibrate, jobs
from calibration.calibrate import CalibrationError, zip_images, zip_members
from calibration.models import Calibration, CalibrationJob
from ml.engine import LivenessEngine
from tests.calibration.conftest import compiled_fast_only
from tests.calibration.test_calibrate import LIVE, SPOOF, make_zip
from tests.conftest import tenant_form
from tests.history import history_refused

pytestmark = pytest.mark.usefixtures("warm_engine")


# The page's script that follows a pending job (calibration/static/calibration/jobs.js).
FOLLOWED = "calibration/jobs.js"


def url_of(tenant: Tenant) -> str:
    return f"/admin/accounts/tenant/{tenant.pk}/calibrate/"


def upload(admin_client: Any, tenant: Tenant, data: bytes, **fields: str) -> Any:
    archive = SimpleUploadedFile("captures.zip", data, content_type="application/zip")
    return admin_client.post(url_of(tenant), {"archive": archive, **fields})


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many images the engine has decoded (the real decoder still runs)."""
    calls: list[int] = []
    real = LivenessEngine.decode_frame

    def counted(engine: LivenessEngine, data: bytes) -> Any:
        calls.append(len(data))
        return real(engine, data)

    monkeypatch.setattr(LivenessEngine, "decode_frame", counted)
    return calls


def test_upload_is_queued_without_a_decode_then_the_job_calibrates(
    make_tenant: Callable[..., Any], admin_client: Any, decodes: list[int]
) -> None:
    tenant, _ = make_tenant("queued")
    response = upload(admin_client, tenant, make_zip(LIVE, SPOOF), target_apcer="10")
    assert response.status_code == 303 and response["Location"] == url_of(tenant)
    assert decodes == [] and not Calibration.objects.exists()
    job = CalibrationJob.objects.get(tenant=tenant)
    assert job.images == len(LIVE) + len(SPOOF) and job.created_by == "admin"
    row = DBTaskResult.objects.get(id=job.task_id)
    assert row.status == "READY" and row.queue_name == jobs.LOCAL_QUEUE
    # The task's row holds the job's id and a digest only: the zip is in memory, never in the
    # database (and its token nowhere: test_the_uploads_token_is_stored_nowhere).
    job_id, key = row.args_kwargs["args"]
    assert job_id == job.pk and re.fullmatch("[0-9a-f]{64}", key)
    page = admin_client.get(url_of(tenant)).content.decode()
    assert f'id="calibration-job-{job.pk}"' in page and "job-queued" in page
    assert FOLLOWED in page and 'http-equiv="refresh"' not in page  # followed, not reloaded

    assert jobs.run_local_jobs() == 1
    assert len(decodes) == len(LIVE) + len(SPOOF) and len(jobs.UPLOADS) == 0
    stored = Calibration.objects.get(tenant=tenant)
    assert stored.origin == "admin upload" and stored.created_by == "admin"
    assert stored.target_apcer == pytest.approx(0.10)
    assert stored.bona_fide + stored.attacks + stored.refused == job.images
    job.refresh_from_db()
    assert job.started == job.images
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-done" in page and f"Calibration #{stored.pk} stored" in page
    assert FOLLOWED not in page and 'id="calibration-status"' in page


def stored_text() -> str:
    """Every row of every table of the test database, as text."""
    tables = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            tables.append(repr(cursor.fetchall()))
    return "\n".join(tables)


def test_the_uploads_token_is_stored_nowhere(
    make_tenant: Callable[..., Any], admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token of a held upload (images of real people) appends to it and drops it over
    the task worker's socket. Passed as the task's argument, it stayed in the task's row,
    queued and after its run: anyone reading the database (a backup) held a live
    capability. The row holds its SHA-256, the key the task takes the upload by."""
    handed: list[str] = []
    real = jobs.hand_off

    def recorded(data: bytes) -> tuple[str, str]:
        queue, token = real(data)
        handed.append(token)
        return queue, token

    monkeypatch.setattr(jobs, "hand_off", recorded)
    tenant, _ = make_tenant("secret")
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    [token] = handed
    job = CalibrationJob.objects.get(tenant=tenant)
    row = DBTaskResult.objects.get(id=job.task_id)
    assert token not in stored_text()  # queued
    assert row.args_kwargs["args"] == [job.pk, hashlib.sha256(token.encode()).hexdigest()]
    assert jobs.run_local_jobs() == 1
    assert DBTaskResult.objects.get(id=job.task_id).status == "SUCCESSFUL"
    assert Calibration.objects.filter(tenant=tenant).exists() and len(jobs.UPLOADS) == 0
    assert token not in stored_text()  # run


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"target_apcer": "100"}, "Above 0 and at most 50: a percentage"),
        ({"target_apcer": "50.5"}, "Above 0 and at most 50: a percentage"),
        ({"target_apcer": "0"}, "Above 0 and at most 50: a percentage"),
        ({"target_apcer": "5", "equal_error": "on"}, "Either a target APCER or the threshold"),
    ],
)
def test_an_upload_with_no_one_threshold_rule_is_refused(
    make_tenant: Callable[..., Any], admin_client: Any, fields: dict[str, str], said: str
) -> None:
    """A target of 100 % set a threshold of 0 (every selfie live); a target with the
    equal-error box ticked ignored the box."""
    tenant, _ = make_tenant("rules")
    response = upload(admin_client, tenant, make_zip(LIVE, SPOOF), **fields)
    assert response.status_code == 200 and said in response.content.decode()
    assert not CalibrationJob.objects.exists()


def test_a_fast_tenants_job_compiles_no_model_of_another_profile(
    make_tenant: Callable[..., Any], admin_client: Any, loaded_engines: list[LivenessEngine]
) -> None:
    make_tenant("careful", profile="thorough")
    tenant, _ = make_tenant("quick")
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    assert jobs.run_local_jobs() == 1
    assert Calibration.objects.filter(tenant=tenant).exists()
    assert compiled_fast_only(loaded_engines)


def test_an_operators_error_is_the_jobs_result(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    tenant, _ = make_tenant("few")
    assert upload(admin_client, tenant, make_zip([], SPOOF[:2])).status_code == 303
    assert jobs.run_local_jobs() == 1
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page and "Needs 1 more live image of a full frame" in page
    assert not Calibration.objects.exists()


def test_a_job_whose_upload_is_gone_says_to_upload_again(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    tenant, _ = make_tenant("lost")
    upload(admin_client, tenant, make_zip(LIVE, SPOOF))
    jobs.UPLOADS._held.clear()  # what a restarted task worker holds
    assert jobs.run_local_jobs() == 1
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page and "upload it again" in page


def test_a_worker_holds_a_bounded_number_of_uploads(
    make_tenant: Callable[..., Any], admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "UPLOADS", jobs.Uploads(max_held=1))
    tenant, _ = make_tenant("busy")
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    page = upload(admin_client, tenant, make_zip(LIVE, SPOOF)).content.decode()
    assert "already holds 1 uploads" in page
    assert CalibrationJob.objects.count() == 1


FAILING_INSERT = """CREATE TRIGGER full BEFORE INSERT ON accounts_calibrationjob
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"""


def test_a_job_that_cannot_be_queued_releases_its_upload(
    make_tenant: Callable[..., Any], admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload is handed to the task worker first; when the job's row cannot be written (a
    lock, an outage, a full disk), nothing would ever take it: it stayed held for
    UPLOAD_TTL_S (30 min, up to 64 MiB, one of MAX_HELD slots). Now it is released, and no
    job row is left without its task (under gunicorn: tests/system/test_calibration_served.py)."""
    monkeypatch.setattr(jobs, "UPLOADS", jobs.Uploads())  # the job queued here is not run
    tenant, _ = make_tenant("locked")
    with connection.cursor() as cursor:
        cursor.execute(FAILING_INSERT)
    with pytest.raises(DatabaseError, match="full"):
        upload(admin_client, tenant, make_zip(LIVE, SPOOF))
    assert len(jobs.UPLOADS) == 0
    assert not CalibrationJob.objects.exists() and not DBTaskResult.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER full")
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    assert len(jobs.UPLOADS) == 1


def test_the_task_workers_refusal_is_a_sentence_never_its_traceback() -> None:
    """gunicorn sends the task worker's HandoffError as a DirtyAppError whose details hold its
    traceback (what gunicorn's dirty worker builds); str() of it, a printed dict with the
    traceback and file paths, was the admin form's error."""
    held = jobs.Uploads()
    for _ in range(jobs.MAX_HELD):
        held.hold(b"zip")
    try:
        held.hold(b"zip")  # as the task worker's dirty app refuses a fifth
    except jobs.HandoffError as exc:
        said, trace = str(exc), traceback.format_exc()
    sent = DirtyAppError(said, app_path=jobs.DIRTY_APP, action="begin", traceback=trace)
    assert "Traceback" in str(sent) and "/calibration/jobs.py" in str(sent)
    shown = str(jobs.refusal(sent))
    assert shown == said == jobs.FULL.format(jobs.MAX_HELD)
    lost = DirtyAppError("KeyError: 'x'", app_path=jobs.DIRTY_APP, action="append", traceback=trace)
    assert str(jobs.refusal(lost)) == jobs.UNAVAILABLE
    assert str(jobs.refusal(DirtyConnectionError(socket_path="/tmp/x"))) == jobs.UNAVAILABLE


def test_view_only_staff_cannot_queue_a_job(
    make_tenant: Callable[..., Any], client: Any, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    tenant, _ = make_tenant("watched")
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_login(viewer)
    assert upload(client, tenant, make_zip(LIVE, SPOOF)).status_code == 403
    assert not CalibrationJob.objects.exists() and len(jobs.UPLOADS) == 0


CSRF_TOKEN = "k" * 32


def csrf_client(user: Any = None) -> Any:
    """A client that passes the CSRF check as a browser does (cookie and form field), so the
    check reads the form as it does in production: before any view runs."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = CSRF_TOKEN
    if user is not None:
        client.force_login(user)
    return client


def zips(data: bytes, *names: str) -> dict[str, Any]:
    return {name: SimpleUploadedFile(f"{name}.zip", data) for name in names}


def held_files(response: Any) -> dict[str, int]:
    """The files the request answered by ``response`` held in memory: field and size."""
    return {name: upload.size for name, upload in response.wsgi_request.FILES.items()}


def test_only_who_may_calibrate_has_a_file_held_in_memory(
    make_tenant: Callable[..., Any], django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any POST whose form is read (the login page, the CSRF check of every admin page) has
    its multipart body parsed: files are held in memory only for a user who may calibrate,
    so nobody else, logged in or not, makes a worker hold up to 100 files of
    UPLOAD_MAX_BYTES each before any permission is checked."""
    from django.contrib.auth.models import Permission

    monkeypatch.setattr(jobs, "UPLOADS", jobs.Uploads())  # the job queued here is not run
    tenant, _ = make_tenant("held")
    data = make_zip(LIVE[:1], SPOOF[:1])
    token = {"csrfmiddlewaretoken": CSRF_TOKEN}
    login = {"username": "someone", "password": "wrong", **token}
    anonymous = csrf_client().post("/admin/login/", {**login, **zips(data, "a", "b", "c")})
    assert anonymous.status_code == 200 and held_files(anonymous) == {}
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    refused = csrf_client(viewer).post(url_of(tenant), {**token, **zips(data, "archive")})
    assert refused.status_code == 403 and held_files(refused) == {}
    operator = django_user_model.objects.create_user("operator", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="change_tenant"))
    blind = csrf_client(operator).post(url_of(tenant), {**token, **zips(data, "archive")})
    assert blind.status_code == 403 and held_files(blind) == {}  # sees no calibration
    operator.user_permissions.add(Permission.objects.get(codename="view_calibration"))
    queued = csrf_client(operator).post(url_of(tenant), {**token, **zips(data, "archive")})
    assert queued.status_code == 303 and held_files(queued) == {"archive": len(data)}


@pytest.mark.parametrize("names", [("archive",), ("archive", "second")])
def test_one_request_holds_at_most_upload_max_bytes(
    make_tenant: Callable[..., Any], admin_client: Any, settings: Any, names: tuple[str, ...]
) -> None:
    """A file over the limit, or files that together exceed it, are dropped and the page says
    so: the limit bounds what one request holds, not each of its files."""
    tenant, _ = make_tenant("bounded")
    data = make_zip(LIVE[:1], SPOOF[:1])
    settings.UPLOAD_MAX_BYTES = len(data) * len(names) - 1
    response = admin_client.post(url_of(tenant), zips(data, *names))
    assert sum(held_files(response).values()) <= settings.UPLOAD_MAX_BYTES
    assert "larger than the upload limit" in response.content.decode()
    assert not CalibrationJob.objects.exists() and len(jobs.UPLOADS) == 0


@pytest.fixture
def zip_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times zipfile parsed a central directory (the real parser still runs)."""
    calls: list[int] = []
    real = zipfile.ZipFile

    def counted(*args: Any, **kwargs: Any) -> zipfile.ZipFile:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", counted)
    return calls


def test_too_many_members_are_refused_from_the_end_record(zip_parses: list[int]) -> None:
    data = empty_entries(calibrate.MAX_MEMBERS + 1)
    zip_parses.clear()  # writing it counted
    with pytest.raises(CalibrationError, match="More than 2000 files"):
        zip_members(data)
    assert zip_parses == []  # refused before zipfile built an object per entry
    assert len(zip_members(empty_entries(10))) == 10


def test_a_zip64_end_record_is_read_too(zip_parses: list[int]) -> None:
    data = empty_entries(calibrate.MAX_MEMBERS + 1)
    zip_parses.clear()
    end = data.rfind(b"PK\x05\x06")
    entries, size, offset = struct.unpack_from("<HII", data, end + 10)
    zip64 = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    patched = (
        data[:end]
        + zip64
        + locator
        + data[end : end + 8]
        + struct.pack("<HHII", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        + data[end + 20 :]
    )
    with pytest.raises(CalibrationError, match="More than 2000 files"):
        zip_members(patched)
    assert zip_parses == []


def test_declared_sizes_over_the_bounds_are_refused_before_inflating() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("live/big.jpg", b"\0" * (calibrate.MAX_IMAGE_BYTES + 1))
    assert len(buffer.getvalue()) < 100_000  # 12 MB of zeros, a few kB zipped
    with pytest.raises(CalibrationError, match="too large once inflated"):
        zip_members(buffer.getvalue())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            archive.writestr(f"spoof/{i}.png", b"\0" * 1000)
    with pytest.raises(CalibrationError, match="2500 in all"):
        zip_members(buffer.getvalue(), max_total_bytes=2500)


def test_a_member_larger_than_declared_inflates_no_further() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("live/liar.jpg", b"\xff" * 5_000_000)
    data = bytearray(buffer.getvalue())
    for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # declare 1,000 bytes
        start = data.find(signature)
        data[start + at : start + at + 4] = struct.pack("<I", 1000)
    ((label, content, group),) = list(zip_images(bytes(data)))
    assert label == "live" and content == b"" and group == ""  # cut at its declared size


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_member_compressed_otherwise_than_deflate_is_refused_before_inflating(
    method: int, make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """zipfile cuts a bzip2 or LZMA member at its declared size only after inflating all of
    its compressed input: 1.6 kB of bzip2 declared as 1,000 bytes inflated 2 GB of zeros
    (18.5 s, 4.2 GB of RSS) in the task worker before it was cut and counted not decoded.
    Refused from the central directory, at the upload, naming the member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in LIVE + SPOOF:
            archive.writestr(f"c/{path.parent.name}/{path.name}", path.read_bytes())
        archive.writestr("c/live/bomb.jpg", b"\0" * 20_000_000, compress_type=method)
        assert archive.getinfo("c/live/bomb.jpg").compress_size < 10_000  # 20 MB of zeros
    data = bytearray(buffer.getvalue())
    for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # declare 1,000 bytes
        start = data.rfind(signature)
        data[start + at : start + at + 4] = struct.pack("<I", 1000)
    said = f"c/live/bomb.jpg is compressed with method {method}: only stored or deflated"
    with pytest.raises(CalibrationError, match=said):
        zip_members(bytes(data))
    tenant, _ = make_tenant("bzipped")
    page = upload(admin_client, tenant, bytes(data))
    assert page.status_code == 200 and said in page.content.decode()
    assert not CalibrationJob.objects.filter(tenant=tenant).exists()


def test_decode_bombs_in_the_zip_are_refused_by_the_decoders_checks(
    make_tenant: Callable[..., Any], admin_client: Any, decodes: list[int]
) -> None:
    tenant, _ = make_tenant("bombed")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in LIVE + SPOOF:
            archive.writestr(f"c/{path.parent.name}/{path.name}", path.read_bytes())
        archive.writestr("c/live/scans.jpg", jpeg_with_empty_scans(5000, (8000, 5000)))
        archive.writestr("c/spoof/idat.png", png_extra_idat(3_000_000))
    assert upload(admin_client, tenant, buffer.getvalue()).status_code == 303
    assert jobs.run_local_jobs() == 1
    stored = Calibration.objects.get(tenant=tenant)
    assert stored.figures["refused"].get("not_decoded", 0) >= 2
    assert stored.bona_fide + stored.attacks + stored.refused == len(LIVE) + len(SPOOF) + 2


def test_a_malformed_zip_is_a_clear_refusal_never_a_crash(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(4):
            archive.writestr(f"c/live/{i}.jpg", bytes(range(256)) * 2)
            archive.writestr(f"c/spoof/{i}.png", b"x" * 100)
    base = buffer.getvalue()
    rng = random.Random(7)
    for _ in range(3000):  # seeded byte flips and cuts: entry names, versions, sizes, streams
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.1:
            data = data[: rng.randrange(len(data))]
        with contextlib.suppress(CalibrationError):
            list(zip_images(bytes(data)))
    # An entry with an empty name (zipfile's is_dir() raised IndexError on it).
    nameless = base.replace(b"c/live/0.jpg", b"\0" * 12)
    tenant, _ = make_tenant("malformed")
    answer = upload(admin_client, tenant, nameless)
    assert answer.status_code == 303  # queued, the nameless entry left out
    assert CalibrationJob.objects.get(tenant=tenant).images == 7
    assert jobs.run_local_jobs() == 1
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page
    assert "Judged: 0 live and 0 spoof (7 refused by the gates (not_decoded: 7))" in page


def test_jobs_a_stopping_worker_held_say_to_upload_again(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    tenant, _ = make_tenant("stopped")
    upload(admin_client, tenant, make_zip(LIVE, SPOOF))
    assert jobs.interrupt_jobs(jobs.LOCAL_QUEUE) == 1  # what the task worker's close() does
    assert jobs.run_local_jobs() == 0
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page and "restarted before the job ended" in page


def test_a_worker_is_stalled_when_its_queue_shows_no_sign_of_life(
    make_tenant: Callable[..., Any], admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job queued behind a running one waits as long as the running one beats; both are
    failed once nothing of their worker's queue moved for STALLED_S (the worker killed:
    tests/system/test_calibration_served.py kills a real one)."""
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(jobs, "UPLOADS", jobs.Uploads())  # the jobs queued here are not run
    tenant, _ = make_tenant("backlog")
    for _ in range(2):
        assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    first = CalibrationJob.objects.earliest("pk")
    DBTaskResult.objects.get(id=first.task_id).claim("a-worker")
    ago = timezone.now() - timedelta(seconds=jobs.STALLED_S + 5)
    CalibrationJob.objects.update(created_at=ago)
    DBTaskResult.objects.update(enqueued_at=ago, started_at=ago)

    def states() -> list[str]:
        return [jobs.describe_job(job).state for job in CalibrationJob.objects.order_by("pk")]

    jobs.beat(first.pk, started=1)
    assert states() == ["running", "queued"]
    CalibrationJob.objects.update(beat_at=ago)
    assert states() == ["failed", "failed"]
    said = f"The task worker stopped (no sign of it for {jobs.STALLED_S:.0f} s): upload it again."
    first.refresh_from_db()
    assert jobs.describe_job(first).text == said
    page = admin_client.get(url_of(tenant)).content.decode()
    assert page.count(f"<td>{said}</td>") == 2 and FOLLOWED not in page


def delete(admin_client: Any, tenant: Tenant) -> None:
    answer = admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302 and not Tenant.objects.filter(pk=tenant.pk).exists()


@pytest.mark.parametrize("when", ["before its job ran", "while its job ran"])
def test_a_job_whose_tenant_is_deleted_ends_in_one_line_and_frees_its_upload(
    make_tenant: Callable[..., Any],
    admin_client: Any,
    during_the_job: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    """Its task failed with an ERROR and the traceback of Tenant.DoesNotExist (the job's row
    read, or the tenant locked to store), and a job still queued left its upload in one of
    the worker's MAX_HELD slots until UPLOAD_TTL_S."""
    monkeypatch.setattr(jobs, "UPLOADS", jobs.Uploads())  # none another test left
    tenant, _ = make_tenant("deleted")
    if when == "while its job ran":
        during_the_job(lambda: delete(admin_client, tenant))
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    job = CalibrationJob.objects.get(tenant=tenant)
    if when == "before its job ran":
        delete(admin_client, tenant)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert jobs.run_local_jobs() == 1
    assert len(jobs.UPLOADS) == 0 and not Calibration.objects.exists()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    said = [r.getMessage() for r in caplog.records if r.name == "calibration.jobs"]
    assert said == [f"calibration job #{job.pk}: its tenant was deleted {when}; nothing stored"]
    assert DBTaskResult.objects.get(id=job.task_id).status == "SUCCESSFUL"


def history(tenant: Tenant) -> list[str]:
    from django.contrib.admin.models import LogEntry

    own = LogEntry.objects.filter(object_id=str(tenant.pk), content_type__model="tenant")
    return [entry.get_change_message() for entry in own.order_by("pk")]


def test_a_threshold_changed_while_the_job_runs_is_kept_and_the_job_says_so(
    make_tenant: Callable[..., Any], admin_client: Any, during_the_job: Any
) -> None:
    """The job keeps the threshold it read (no target): it put 0.5 back over the operator's
    0.7 and wrote "threshold 0.5000 → 0.5000" in the history, a tenant then at 0.7000."""
    tenant, _ = make_tenant("edited", threshold=0.5)
    change = f"/admin/accounts/tenant/{tenant.pk}/change/"
    during_the_job(lambda: admin_client.post(change, tenant_form(tenant, threshold="0.7")))
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    assert jobs.run_local_jobs() == 1
    tenant.refresh_from_db()
    assert tenant.threshold == 0.7 and tenant.calibration is None
    assert not Calibration.objects.exists()
    assert not [line for line in history(tenant) if line.startswith("Calibrated")]
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page and "Not applied: while this calibration ran" in page
    assert "threshold 0.5000 → 0.7000" in page and "calibrate again" in page


def test_a_candidate_promoted_while_the_job_runs_stays_active(
    make_tenant: Callable[..., Any], admin_client: Any, during_the_job: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tests.conftest import stored_calibration

    tenant, _ = make_tenant("promoted", threshold=0.5)
    candidate = stored_calibration(tenant, threshold=0.61)
    candidate.shadow(timezone.now(), timezone.now() + timedelta(days=1))
    shadow = f"/admin/accounts/tenant/{tenant.pk}/shadow/"
    during_the_job(lambda: admin_client.post(shadow, {"shadow": f"promote:{candidate.pk}"}))
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF), target_apcer="10").status_code == 303
    assert jobs.run_local_jobs() == 1
    tenant.refresh_from_db()
    assert (tenant.calibration or {}).get("id") == candidate.pk and tenant.threshold == 0.61
    assert list(Calibration.objects.values_list("pk", flat=True)) == [candidate.pk]
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page and "threshold 0.5000 → 0.6100" in page
    assert f"active calibration none → #{candidate.pk}" in page


def test_a_change_the_calibration_does_not_depend_on_lets_it_apply(
    make_tenant: Callable[..., Any], admin_client: Any, during_the_job: Any
) -> None:
    """A request limit set while the job runs: the job applies, its history entry says the
    threshold the tenant had when it applied."""
    tenant, _ = make_tenant("limited", threshold=0.5)
    change = f"/admin/accounts/tenant/{tenant.pk}/change/"
    during_the_job(lambda: admin_client.post(change, tenant_form(tenant, request_limit="100")))
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF), target_apcer="10").status_code == 303
    assert jobs.run_local_jobs() == 1
    tenant.refresh_from_db()
    stored = Calibration.objects.get(tenant=tenant)
    assert tenant.request_limit == 100 and (tenant.calibration or {}).get("id") == stored.pk
    said = f"Calibrated: {stored}, threshold 0.5000 → {stored.threshold:.4f}."
    assert said in history(tenant)


def test_a_shadow_job_does_not_replace_a_candidate_set_while_it_ran(
    make_tenant: Callable[..., Any], admin_client: Any, during_the_job: Any
) -> None:
    """A shadow upload replaces the candidate the tenant had when it began (set aside, as
    before), not one set while it ran (another upload's, the command's)."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.conftest import stored_calibration

    tenant, _ = make_tenant("shadowed", threshold=0.5)
    newer = stored_calibration(tenant, threshold=0.61)
    during_the_job(lambda: newer.shadow(timezone.now(), timezone.now() + timedelta(days=1)))
    response = upload(admin_client, tenant, make_zip(LIVE, SPOOF), shadow_days="7")
    assert response.status_code == 303 and jobs.run_local_jobs() == 1
    tenant.refresh_from_db()
    assert (tenant.shadow_calibration or {}).get("id") == newer.pk and tenant.calibration is None
    newer.refresh_from_db()
    assert newer.reverted_at is None
    assert list(Calibration.objects.values_list("pk", flat=True)) == [newer.pk]
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "job-failed" in page and f"shadow candidate none → #{newer.pk}" in page


def calibrator() -> Any:
    """A client of a user who may calibrate but not view check records."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    user = User.objects.create_user("calibrator", is_staff=True)
    wanted = ("view_tenant", "change_tenant", "view_calibration")
    user.user_permissions.set(Permission.objects.filter(codename__in=wanted))
    client = Client()
    client.force_login(user)
    return client


def test_a_shadow_upload_says_the_candidate_it_sets_aside(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """The upload page warns of the candidate in shadow (its id, since when, its flips so
    far); the job's result and the tenant's history say it replaced that candidate."""
    from datetime import UTC, datetime, timedelta

    from django.utils import timezone

    from liveness.models import LivenessCheck
    from tests.conftest import stored_calibration

    tenant, _ = make_tenant("replaced", threshold=0.5)
    first = stored_calibration(tenant, threshold=0.61)
    first.shadow(timezone.now(), timezone.now() + timedelta(days=1))
    verdicts = [(True, False), (False, True), (True, False), (True, True), (False, None)]
    for is_live, shadow_is_live in verdicts:
        LivenessCheck.objects.create(
            tenant=tenant, latency_ms=1, is_live=is_live, shadow_is_live=shadow_is_live
        )
    tenant.refresh_from_db()
    since = datetime.fromtimestamp(tenant.shadow_calibration["since"], tz=UTC)
    page = admin_client.get(url_of(tenant)).content.decode()
    warning = page.split('id="shadow-warning">')[1].split("</li>")[0]
    shown = f"candidate #{first.pk} (threshold 0.6100) in shadow since {since:%Y-%m-%d %H:%M}"
    assert shown in warning
    assert "So far 4 checks recorded with both verdicts: 2 live → spoof, 1 spoof → live" in warning
    unseen = calibrator().get(url_of(tenant)).content.decode()  # the flips: from the checks
    warning = unseen.split('id="shadow-warning">')[1].split("</li>")[0]
    assert shown in warning and "So far" not in warning

    response = upload(admin_client, tenant, make_zip(LIVE, SPOOF), shadow_days="7")
    assert response.status_code == 303 and jobs.run_local_jobs() == 1
    stored = Calibration.objects.exclude(pk=first.pk).get(tenant=tenant)
    replacing = f"replacing candidate #{first.pk} (set aside)"
    assert history(tenant)[-1] == (
        f"Shadow candidate: {stored}, for 7 days, {replacing} (the shipped score maps still "
        "answer)."  # the tenant has no active calibration
    )
    page = admin_client.get(url_of(tenant)).content.decode()
    assert f"Calibration #{stored.pk} set in shadow for 7 days, {replacing}" in page
    assert f"shadow candidate #{stored.pk} (threshold" in page


def test_the_upload_page_of_a_tenant_without_a_candidate_warns_of_none(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    tenant, _ = make_tenant("no candidate")
    page = admin_client.get(url_of(tenant))
    assert page.status_code == 200 and 'id="shadow-warning"' not in page.content.decode()


def test_a_zip_with_backslash_separators_is_read() -> None:
    """Windows PowerShell 5.1's Compress-Archive names members "live\\x.jpg": read as one
    name, none is an image under live/, and the job would ask for 1 more live and 1 more spoof
    image."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, path in (("live", LIVE[0]), ("spoof", SPOOF[0])):
            archive.writestr(f"captures\\{label}\\g1\\{path.name}", path.read_bytes())
    members = zip_members(buffer.getvalue())
    assert [(m.label, m.group) for m in members] == [("live", "g1"), ("spoof", "g1")]


def test_a_zip_without_images_under_live_or_spoof_is_refused_at_upload(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """Was queued as a job of 0 images (the task worker held the zip), whose result then asked
    for 1 more live and 1 more spoof image of each kind."""
    tenant, _ = make_tenant("unlabelled")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"Live/{LIVE[0].name}", LIVE[0].read_bytes())  # capitalised
        archive.writestr(f"spoof/{SPOOF[0].name}.txt", b"not an image")
    response = upload(admin_client, tenant, buffer.getvalue())
    assert response.status_code == 200 and not CalibrationJob.objects.exists()
    assert (
        "The zip holds no image (.jpeg, .jpg, .png) in a folder named live or spoof (lowercase), "
        "at its top or below a single top folder." in response.content.decode()
    )


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, LIVE[0].read_bytes())
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (
            ["c/live/a.jpg", "c/spoof/b.jpg", "c/live/spoof/z.jpg"],
            "live/spoof/z.jpg: a spoof/ folder inside live/",
        ),
        (["live/a.jpg", "spoof/g/h/b.jpg"], "spoof/g/h/b.jpg: too deep"),
        (
            ["a/live/x.jpg", "b/spoof/y.jpg"],
            "live/ and spoof/ must be at the zip&#x27;s top or below a single top folder, not "
            "below a/, b/",
        ),
    ],
)
def test_a_zip_with_an_image_the_rule_places_nowhere_is_refused_naming_it(
    make_tenant: Callable[..., Any], admin_client: Any, names: list[str], said: str
) -> None:
    """The zip took live/ and spoof/ at any depth, the outermost as the label (c/live/spoof/z.jpg
    counted live) and a/live beside b/spoof; the folder reader skipped them without a word."""
    tenant, _ = make_tenant("misplaced")
    response = upload(admin_client, tenant, zipped(*names))
    assert response.status_code == 200 and not CalibrationJob.objects.exists()
    assert said in response.content.decode()


@pytest.mark.parametrize(
    ("names", "count"),
    [
        (["captures/live/a.jpg", "captures/spoof/b.jpg", "notes/readme.png"], 2),
        (["/live/a.jpg", "/spoof/b.jpg"], 2),
        (["/captures/live/a.jpg", "/captures/spoof/g/b.jpg", "/captures/c.jpg"], 2),
    ],
)
def test_a_zip_with_a_stray_image_or_absolute_names_is_read(
    make_tenant: Callable[..., Any], admin_client: Any, names: list[str], count: int
) -> None:
    """An audit's uploads: a stray image beside captures/ (notes/readme.png) was refused as
    "not below captures/, notes/" though the docs say files beside live/ and spoof/ are not
    read; names with a leading "/" as "no image ... in a folder named live or spoof"."""
    tenant, _ = make_tenant("stray")
    response = upload(admin_client, tenant, zipped(*names))
    assert response.status_code == 303, response.content.decode()
    assert CalibrationJob.objects.get(tenant=tenant).images == count
    assert jobs.run_local_jobs() == 1  # its upload, held by the task worker, is let go


def test_a_zip_with_capitalised_folders_is_told_they_must_be_lowercase(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """LIVE/ and SPOOF/ were refused as "not below LIVE/, SPOOF/": the problem is the
    capitals, which the one-folder case's "(lowercase)" already hinted."""
    tenant, _ = make_tenant("capitals")
    response = upload(admin_client, tenant, zipped("LIVE/a.jpg", "SPOOF/b.jpg"))
    page = response.content.decode()
    assert response.status_code == 200 and not CalibrationJob.objects.exists()
    assert "not below" not in page
    assert (
        "in a folder named live or spoof (lowercase), at its top or below a single top folder. "
        "Its LIVE/, SPOOF/ are not read: the folder names must be lowercase." in page
    )


@pytest.mark.parametrize(
    ("names", "found"),
    [
        (["c/x/live/a.jpg", "c/x/spoof/b.jpg"], "c/x/live/, c/x/spoof/ are"),
        (["c/x/y/live/a.jpg", "c/x/live/g/b.jpg", "c/notes.png"], "c/x/live/, c/x/y/live/ are"),
        (["c/x/Live/a.jpg", "c/x/spoof/b.jpg"], "c/x/spoof/ is"),
    ],
)
def test_a_zip_with_live_and_spoof_too_deep_is_told_where_they_are_and_must_be(
    make_tenant: Callable[..., Any], admin_client: Any, names: list[str], found: str
) -> None:
    """An audit's upload: images two folders down (c/x/live/a.jpg) got only the generic "no
    image in a folder named live or spoof", which did not say what was found nor that the
    folders are one level too deep."""
    tenant, _ = make_tenant("buried")
    response = upload(admin_client, tenant, zipped(*names))
    page = response.content.decode()
    assert response.status_code == 200 and not CalibrationJob.objects.exists()
    assert (
        "in a folder named live or spoof (lowercase), at its top or below a single top folder. "
        in page
    )
    assert (
        f"Its {found} too deep, so no image there is read: live/ and spoof/ must be at "
        "the zip&#x27;s top (live/a.jpg) or directly in its single top folder (c/live/a.jpg, "
        "c/spoof/b.jpg)." in page
    )


def test_a_zips_images_below_one_top_folder_are_read_with_their_groups() -> None:
    members = zip_members(zipped("c/live/a.jpg", "c/live/g/b.jpg", "c/spoof/h/c.png", "c/x.jpg"))
    assert [(m.label, m.group, m.info.filename) for m in members] == [
        ("live", "", "c/live/a.jpg"),
        ("live", "g", "c/live/g/b.jpg"),
        ("spoof", "h", "c/spoof/h/c.png"),
    ]  # c/x.jpg lies beside live/ and spoof/, as a folder's own files do


def test_a_zip_made_by_macos_finder_counts_its_images_only() -> None:
    """Finder adds "__MACOSX/<path>/._<name>" (AppleDouble metadata) for each file: none may be
    taken for an image under live/ or spoof/, which would double the job's count, each refused
    as not_decoded."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, path in (("live", LIVE[0]), ("spoof", SPOOF[0])):
            archive.writestr(f"captures/{label}/{path.name}", path.read_bytes())
            archive.writestr(f"__MACOSX/captures/{label}/._{path.name}", b"\x00\x05\x16\x07")
        archive.writestr(f"captures/live/._{LIVE[1].name}", b"\x00\x05\x16\x07")
    members = zip_members(buffer.getvalue())
    assert [m.info.filename for m in members] == [
        f"captures/live/{LIVE[0].name}",
        f"captures/spoof/{SPOOF[0].name}",
    ]


def test_a_shadow_job_of_one_day_says_so_in_the_singular(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """Its result read "set in shadow for 1 days", as `calibrate --shadow 1` did."""
    tenant, _ = make_tenant("one-day")
    response = upload(admin_client, tenant, make_zip(LIVE, SPOOF), shadow_days="1")
    assert response.status_code == 303 and jobs.run_local_jobs() == 1
    stored = Calibration.objects.get(tenant=tenant)
    page = admin_client.get(url_of(tenant)).content.decode()
    assert f"Calibration #{stored.pk} set in shadow for 1 day: threshold" in page


@pytest.mark.django_db(transaction=True)  # autocommit, as the task worker runs: no test transaction
def test_a_jobs_calibration_whose_history_entry_fails_is_not_stored(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """The job stored and applied the calibration, then wrote its history entry apart: a
    worker killed between the two left it active with no entry. One transaction now."""
    tenant, _ = make_tenant("unrecorded job")
    before = Tenant.objects.filter(pk=tenant.pk).values().get()
    assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    with history_refused():
        assert jobs.run_local_jobs() == 1
    assert not Calibration.objects.exists() and not LogEntry.objects.exists()
    assert Tenant.objects.filter(pk=tenant.pk).values().get() == before
    page = admin_client.get(url_of(tenant)).content.decode()
    assert "Failed unexpectedly; the server log has the details." in page


def end_record(entries: int = 0xFFFF, size: int = 0xFFFF) -> bytes:
    """An end of central directory record (22 bytes, no comment)."""
    return b"PK\x05\x06" + struct.pack("<HHHHII", 0, 0, entries, entries, size, 0) + b"\0\0"


@pytest.mark.parametrize(
    "data",
    [
        # the end record 10 bytes in: the zip64 locator would start 10 bytes before the file
        b"A" * 10 + end_record()[:20] + b"PK\x06\x07" + b"\0" * 6,
        end_record() + b"PK\x06\x07" + b"\0" * 16,  # at 0, "PK\x06\x07" where -20 reads
        b"PK\x06\x07" + b"\0" * 4 + b"\xff" * 12 + end_record(),  # locator past the file's end
        b"PK\x06\x07" + struct.pack("<IQI", 0, 0, 1) + end_record(),  # no zip64 record at 0
    ],
    ids=["end-record-at-10", "end-record-at-0", "locator-past-the-end", "no-zip64-record"],
)
def test_a_zip64_locator_outside_the_file_is_not_a_zip(
    data: bytes, make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """An end record less than 20 bytes into the file has no room for a zip64 locator before
    it: its offset was negative, read from the file's end, and struct.error escaped (the
    40-byte upload answered 500)."""
    with pytest.raises(CalibrationError, match="The upload is not a zip file."):
        zip_members(data)
    tenant, _ = make_tenant("crafted")
    page = upload(admin_client, tenant, data)
    assert page.status_code == 200 and "The upload is not a zip file." in page.content.decode()
    assert not CalibrationJob.objects.filter(tenant=tenant).exists()


def encrypted(data: bytes) -> bytes:
    """``data``, a zip, with each entry flagged encrypted (general purpose bit 0) in its local
    and central headers, as a zip tool with a password writes them."""
    patched = bytearray(data)
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = patched.find(signature)
        while start >= 0:
            patched[start + at] |= 0x1
            start = patched.find(signature, start + 4)
    return bytes(patched)


def test_an_encrypted_zip_is_refused_at_the_upload(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    """zipfile reads no encrypted member without its password: such a zip was queued, then
    each image was refused by the gates (not_decoded), 84 of 84, after the job ran."""
    data = encrypted(zipped("c/live/a.jpg", "c/spoof/b.jpg"))
    said = "The zip's files are encrypted: upload it without a password."
    with pytest.raises(CalibrationError, match=said):
        zip_members(data)
    tenant, _ = make_tenant("locked")
    page = upload(admin_client, tenant, data)
    assert page.status_code == 200 and escape(said) in page.content.decode()
    assert not CalibrationJob.objects.filter(tenant=tenant).exists()


def test_a_job_of_one_image_is_said_in_the_singular(
    make_tenant: Callable[..., Any], admin_client: Any
) -> None:
    tenant, _ = make_tenant("single")
    response = upload(admin_client, tenant, zipped("live/a.jpg"))
    assert response.status_code == 303
    page = admin_client.get(response["Location"]).content.decode()
    job = CalibrationJob.objects.get(tenant=tenant)
    assert f"Calibration job #{job.pk} queued (1 image); this page" in page
