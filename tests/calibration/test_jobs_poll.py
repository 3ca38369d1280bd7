"""The JSON the calibrate page's script polls while a job is pending (in place of the page's
former 3 s reload): the page's own permissions (``change_tenant`` and ``view_calibration``,
403 otherwise, before saying whether the tenant exists), this tenant's jobs only, the same
rows and sentence as the page (the real admin through Django's test client, the jobs run by
the real engine on the ``local`` queue)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Tenant
from calibration import jobs
from calibration.models import Calibration, CalibrationJob
from tests.calibration.test_calibrate import LIVE, SPOOF, make_zip
from tests.calibration.test_calibration_jobs import upload, url_of
from tests.guard.test_bulk_delete import staff

PAGE_NEEDS = ("accounts.change_tenant", "calibration.view_calibration")


def poll_of(tenant_id: int) -> str:
    return reverse("admin:accounts_tenant_calibrate_jobs", args=[tenant_id])


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads held apart from other tests' (the jobs queued here are run or dropped)."""
    monkeypatch.setattr(jobs, "UPLOADS", jobs.Uploads())


@pytest.mark.usefixtures("warm_engine", "held")
def test_the_poll_answers_its_tenants_jobs_as_the_page_shows_them(
    make_tenant: Callable[..., Any], admin_client: Client
) -> None:
    ours, _ = make_tenant("polled")
    theirs, _ = make_tenant("other")
    for tenant in (ours, theirs, ours):
        assert upload(admin_client, tenant, make_zip(LIVE, SPOOF)).status_code == 303
    first, second = CalibrationJob.objects.filter(tenant=ours).order_by("pk")
    other = CalibrationJob.objects.get(tenant=theirs)

    answer = admin_client.get(poll_of(ours.pk))
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    polled = answer.json()
    ids = [job["id"] for job in polled["jobs"]]
    assert ids == [f"calibration-job-{second.pk}", f"calibration-job-{first.pk}"]  # newest first
    assert f"calibration-job-{other.pk}" not in ids
    assert polled["pending"] is True and [job["state"] for job in polled["jobs"]] == ["queued"] * 2
    assert polled["summary"] == f"Job #{second.pk} queued. 1 earlier job is still pending."
    page = admin_client.get(url_of(ours)).content.decode()
    for job in polled["jobs"]:  # the page's rows hold the same cells, so the script copies text
        row = re.search(rf'<tr class="job-queued" id="{job["id"]}">(.*?)</tr>', page)
        assert row is not None and re.findall("<td>(.*?)</td>", row[1]) == job["cells"]
    assert f'data-poll="{poll_of(ours.pk)}"' in page and polled["summary"] in page

    assert jobs.run_local_jobs() == 3
    polled = admin_client.get(poll_of(ours.pk)).json()
    stored = Calibration.objects.filter(tenant=ours).latest("pk")
    assert polled["pending"] is False and [job["state"] for job in polled["jobs"]] == ["done"] * 2
    assert polled["summary"].startswith(f"Job #{second.pk} done: Calibration #{stored.pk} stored")
    ours.refresh_from_db()
    assert polled["threshold"] == f"{ours.threshold:.4f}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "perms",
    [
        (),
        ("accounts.view_tenant",),
        ("accounts.change_tenant",),  # may not view the calibrations the jobs store
        ("calibration.view_calibration",),
        ("accounts.view_tenant", "calibration.view_calibration"),  # may not upload
    ],
)
def test_the_poll_refuses_a_user_who_may_not_open_the_page(perms: tuple[str, ...]) -> None:
    tenant = Tenant.objects.create(name="Guarded")
    CalibrationJob.objects.create(tenant=tenant, created_by="op", images=2)
    client = staff(*perms)
    for tenant_id in (tenant.pk, tenant.pk + 1000):  # 403 whether it exists or not
        answer = client.get(poll_of(tenant_id))
        assert answer.status_code == 403 and b"calibration-job" not in answer.content
    assert client.get(url_of(tenant)).status_code == 403  # as the page itself


@pytest.mark.django_db
def test_the_poll_answers_a_user_who_may_open_the_page() -> None:
    tenant = Tenant.objects.create(name="Permitted")
    client = staff(*PAGE_NEEDS)
    answer = client.get(poll_of(tenant.pk))
    assert answer.status_code == 200 and answer.json()["jobs"] == []
    assert client.get(poll_of(tenant.pk + 1000)).status_code == 404
    assert client.post(poll_of(tenant.pk)).status_code == 405  # it reads, never acts


@pytest.mark.django_db
def test_the_poll_sends_a_signed_out_browser_to_the_login(client: Client) -> None:
    tenant = Tenant.objects.create(name="Signed out")
    answer = client.get(poll_of(tenant.pk))
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
