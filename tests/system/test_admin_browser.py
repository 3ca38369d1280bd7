"""The admin in a real browser (Debian's chromium driven by Playwright) against the real server.

Log in, create a tenant, see its hash_id once and copy it with the Copy button, use it, revoke
it from the tenant's page, see the tenant list fit 1280 px with the tenants at their limit
highlighted, open the usage chart with a date range and its CSV, an evaluation's page with its
plots, the index overview, calibrate from an uploaded zip and revert. Screenshots are kept in
artifacts/ (admin-hash-id, admin-tenant, admin-tenants, admin-usage, admin-evaluation, admin-index,
admin-calibration).
"""

import io
import os
import re
import signal
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.gunicorn import http_workers
from tests.browser import PASSWORD, chromium
from tests.conftest import LIVE_JPG, REPO, SPOOF_JPG, data_uri, is_frame, subset_of_dev
from tests.servers.entrypoint import Served
from tests.servers.processes import children

pytestmark = pytest.mark.system

ARTIFACTS = REPO / "artifacts"
# Tenants at and near their limit, for the list's highlight and the index overview.
FIXTURES = """
from accounts.models import Tenant
Tenant.objects.create(name="Full {pid}", request_limit=20, requests_used=20)
Tenant.objects.create(name="Nearly {pid}", request_limit=100, requests_used=95)
"""
LATEST_EVALUATION = (
    "from calibration.models import Evaluation as E; print(E.objects.latest('pk').pk)"
)
# Thirty days of earlier traffic, so the chart has something to show beside today's checks.
HISTORY = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import Tenant
from liveness.models import LivenessCheck
tenant = Tenant.objects.get(name={name!r})
now = timezone.now()
for days_ago in range(1, 30):
    n = (days_ago * 7) % 11
    for i in range(n):
        outcome = {{"is_live": i % 3 != 0}} if i % 5 else {{"refused_code": "no_face"}}
        check = LivenessCheck.objects.create(tenant=tenant, latency_ms=40.0, **outcome)
        LivenessCheck.objects.filter(pk=check.pk).update(created_at=now - timedelta(days=days_ago))
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def post(served: Served, hash_id: str, path: Path) -> int:
    body = {"hash_id": hash_id, "selfie_image": data_uri(path)}
    return requests.post(f"{served.base}/liveness", json=body, timeout=30).status_code


def test_operator_flow_in_chromium(served: Served, browser: Any, tmp_path: Path) -> None:
    user = f"op{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "op@example.com")
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(60_000)  # each wait ends on its event; a guard for a loaded machine
    ARTIFACTS.mkdir(exist_ok=True)

    page.goto(f"{served.base}/admin/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")

    # Create a tenant: its hash_id appears once, in the message at the top.
    name = f"Browser Co {os.getpid()}"
    page.goto(f"{served.base}/admin/accounts/tenant/add/")
    page.fill("#id_name", name)
    page.fill("#id_request_limit", "50")
    page.click("input[name=_save]")
    hash_id = page.locator("code.new-hash-id").inner_text()
    assert len(hash_id) == 43
    page.click("button.copy-hash-id")
    page.wait_for_selector("button.copy-hash-id[data-copied=true]")
    assert page.evaluate("navigator.clipboard.readText()") == hash_id
    page.screenshot(path=str(ARTIFACTS / "admin-hash-id.png"))
    assert [post(served, hash_id, LIVE_JPG), post(served, hash_id, SPOOF_JPG)] == [201, 201]
    served.manage("shell", "-c", HISTORY.format(name=name))

    page.goto(f"{served.base}/admin/accounts/tenant/")
    page.click(f"#result_list >> text={name}")
    page.wait_for_selector("#tenant_form")
    assert hash_id not in page.content()  # shown once, never again
    assert hash_id[:8] in page.content()
    page.screenshot(path=str(ARTIFACTS / "admin-tenant.png"), full_page=True)

    # Revoke it from the tenant's page; the service refuses it from then on (a 401 counted for
    # the tenant, since the hash_id was its).
    page.click(f"button.revoke-hash-id[data-prefix='{hash_id[:8]}']")
    assert f"Revoked hash_id {hash_id[:8]}" in page.locator("ul.messagelist").inner_text()
    assert page.locator("button.revoke-hash-id").count() == 0
    assert post(served, hash_id, LIVE_JPG) == 401

    # The tenant list fits 1280 px and highlights the tenants at or near their limit.
    served.manage("shell", "-c", FIXTURES.format(pid=os.getpid()))
    page.goto(f"{served.base}/admin/accounts/tenant/")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 1280
    results = "document.querySelector('#changelist .results')"  # scrolls on its own when cut
    assert page.evaluate(f"{results}.scrollWidth <= {results}.clientWidth")
    full = page.locator(f"#result_list tr:has-text('Full {os.getpid()}') .quota-exhausted")
    assert full.inner_text() == "0"
    assert page.locator(f"#result_list tr:has-text('Nearly {os.getpid()}') .quota-near").count()
    page.screenshot(path=str(ARTIFACTS / "admin-tenants.png"), full_page=True)

    # The usage chart, from the tenant's change page.
    page.goto(f"{served.base}/admin/accounts/tenant/")
    page.click(f"#result_list >> text={name}")
    page.click("#usage-link")
    page.wait_for_selector("#usage-chart")
    assert page.locator("#quota-remaining").inner_text() == "48"
    assert page.locator("#usage-chart rect.bar.live").count() >= 2
    assert page.locator("#usage-chart rect.bar.spoof").count() >= 2
    assert page.locator("#usage-chart rect.bar.refused").count() >= 1
    assert page.locator("#refused-401").inner_text() == "1"
    first = f"{datetime.now(UTC).date() - timedelta(days=59)}"  # 60 days
    page.fill("input[name=from]", first)
    page.click("#usage-range input[type=submit]")
    page.wait_for_selector("#usage-chart")
    assert f"from={first}" in page.url
    csv_url = page.locator("#usage-csv").get_attribute("href") or ""
    assert f"from={first}" in csv_url
    exported = page.request.get(f"{served.base}{csv_url}")
    lines = exported.text().splitlines()
    assert lines[0] == "day,live,spoof,refused_422,refused_401,refused_429"
    assert len(lines) == 61 and lines[1].startswith(f"{first},") and lines[-1].endswith(",1,0")
    page.screenshot(path=str(ARTIFACTS / "admin-usage.png"), full_page=True)
    assert (ARTIFACTS / "admin-usage.png").stat().st_size > 10_000

    # An evaluation by the real command, of dev's full frames: never edited (a superuser may
    # delete it: it can hold a bank's own captures' figures), its ISO report and
    # both plots drawn, the empty crop scope shown as such (every shape of report:
    # tests/system/test_evaluation_browser.py).
    served.manage("evaluate", str(subset_of_dev(tmp_path, is_frame)))
    evaluation = served.manage("shell", "-c", LATEST_EVALUATION).split()[-1]
    page.goto(f"{served.base}/admin/calibration/evaluation/{evaluation}/change/")
    crop = page.locator("#iso-crop h3").inner_text()
    assert crop == "crop: 0 bona fide (0 sources), 0 attacks (0 sources)"
    assert page.locator("#iso-crop td.value").all_inner_texts() == ["-"] * 10
    for plot in ("#plot-det", "#plot-histogram"):
        assert page.evaluate(f"document.querySelector('{plot}').naturalWidth") > 100
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("a.deletelink").count() == 1
    assert page.evaluate("document.scrollingElement.scrollHeight") < 4500  # frame-only: 3200
    page.screenshot(path=str(ARTIFACTS / "admin-evaluation.png"), full_page=True)

    # The index: today's checks and refusals, the tenants at or near their limit.
    page.goto(f"{served.base}/admin/")
    near = page.locator("#overview-near-limit").inner_text()
    assert f"Full {os.getpid()}" in near and f"Nearly {os.getpid()}" in near
    assert int(page.locator("#overview-401").inner_text()) >= 1
    assert page.get_by_text("View site").count() == 0
    page.screenshot(path=str(ARTIFACTS / "admin-index.png"), full_page=True)

    # Calibrate the tenant from a zip of labelled captures, uploaded through the form (the
    # zip is built here in memory from dev images read in place), then revert it.
    page.goto(f"{served.base}/admin/accounts/tenant/")
    page.click(f"#result_list >> text={name}")
    assert "Uncalibrated" in page.locator("#tenant_form").inner_text()
    page.click("#calibrate-link")
    page.wait_for_selector("#calibrate-form")
    archive = {"name": "captures.zip", "mimeType": "application/zip", "buffer": captures_zip()}
    page.set_input_files("#id_archive", files=[archive])
    page.fill("#id_target_apcer", "10")
    page.click("input[name=_calibrate]")
    # Queued at once; the task worker calibrates it while the page's script follows it.
    assert "queued" in page.locator("ul.messagelist").inner_text()
    page.wait_for_selector("#calibration-jobs tr.job-done", timeout=120_000)
    message = page.locator("#calibration-jobs tr.job-done").first.inner_text()
    stored = re.search(r"Calibration #(\d+) stored: threshold (\d\.\d{4})", message)
    assert stored, message
    assert "Full frames (" in message and "Face crops (" in message  # what it changed, per kind
    page.screenshot(path=str(ARTIFACTS / "admin-calibration-job.png"), full_page=True)
    page.click(f".breadcrumbs a:text-is('{name}')")  # back to the tenant's page
    status = page.locator("#calibration-status").inner_text()
    assert f"Calibration #{stored.group(1)}" in status and "admin upload" in status
    # now and held out, each overall and per capture kind; no in-sample row
    assert page.locator("table.calibration-figures tbody tr").count() == 6
    assert "held out (leave-one-image-out)" in status and "APCER" in status
    assert "on the sample" not in status and page.locator("table.calibration-maps").count() == 1
    assert page.input_value("#id_threshold") == stored.group(2).rstrip("0")  # rounded
    page.screenshot(path=str(ARTIFACTS / "admin-calibration.png"), full_page=True)

    page.goto(f"{served.base}/admin/accounts/tenant/?q={name.split()[0]}")
    page.check(f"#result_list tr:has-text('{name}') input.action-select")
    page.select_option("select[name=action]", "revert_to_uncalibrated")
    page.click("button[name=index]")
    assert (
        f"Tenant “{name}”: uncalibrated, threshold 0.5000"
        in page.locator("ul.messagelist").inner_text()
    )
    page.click(f"#result_list >> text={name}")
    assert "Uncalibrated" in page.locator("#tenant_form").inner_text()
    context.close()


def captures_zip() -> bytes:
    """live/ and spoof/ from two dev sources, zipped in memory (nothing written to disk)."""
    buffer = io.BytesIO()
    dev = LIVE_JPG.parents[1]
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("live", "spoof"):
            for path in (
                sorted(dev.glob(f"{label}/jomariya_*")) + sorted(dev.glob(f"{label}/wolf_*"))[:3]
            ):
                archive.writestr(f"{label}/{path.name}", path.read_bytes())
    return buffer.getvalue()


# The shadow's traffic, counted from the check records themselves.
SHADOW_COUNTS = """
from accounts.models import Tenant
from liveness.models import LivenessCheck
rows = LivenessCheck.objects.filter(tenant__name={name!r}, shadow_is_live__isnull=False)
print(rows.count(), rows.filter(is_live=True, shadow_is_live=False).count(),
      rows.filter(is_live=False, shadow_is_live=True).count(),
      Tenant.objects.get(name={name!r}).calibration is None)
"""


def test_shadow_candidate_in_chromium(served: Served, browser: Any, tmp_path: Path) -> None:
    """``calibrate --shadow`` on dev's face crops, real checks through gunicorn, then the
    tenant page: the flips it shows are those the check records hold; promote switches."""
    user = f"shadow{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "s@example.com")
    name, hash_id = served.new_tenant()
    folder = subset_of_dev(tmp_path, lambda row: not is_frame(row))
    out = served.manage("calibrate", name, str(folder), "--shadow", "3")
    assert "in shadow for 3 days" in out and "calibrated, held out (leave-one-source-out)" in out
    dev = LIVE_JPG.parents[1]
    crops = sorted(dev.glob("live/tricky_*"))[:3] + sorted(dev.glob("spoof/wolf_*"))[:3]
    statuses = [post(served, hash_id, path) for path in (LIVE_JPG, SPOOF_JPG, *crops)]
    assert statuses.count(201) >= 6
    checks, live_to_spoof, spoof_to_live, uncalibrated = served.manage(
        "shell", "-c", SHADOW_COUNTS.format(name=name)
    ).split()[-4:]
    assert int(checks) == statuses.count(201) and uncalibrated == "True"

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{served.base}/admin/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    page.goto(f"{served.base}/admin/accounts/tenant/?q={name}")
    page.click(f"#result_list >> text={name}")
    page.wait_for_selector("#shadow-status")
    assert page.locator("#shadow-live-to-spoof").inner_text() == live_to_spoof
    assert page.locator("#shadow-spoof-to-live").inner_text() == spoof_to_live
    assert (
        f"Of {checks} checks recorded with both verdicts"
        in page.locator("#shadow-status").inner_text()
    )
    assert page.locator("#shadow-candidate table.calibration-maps").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-shadow.png"), full_page=True)
    page.click("#shadow-promote")
    assert "Promoted shadow candidate" in page.locator("ul.messagelist").inner_text()
    assert page.locator("#shadow-status").count() == 0
    assert "No shadow candidate" in page.locator("#tenant_form").inner_text()
    context.close()


MAX_WIDTH = "getComputedStyle(document.querySelector({!r})).maxWidth"
TENANT_NAMED = (
    "from accounts.models import Tenant; print(Tenant.objects.filter(name={name!r}).count())"
)


def test_expired_session_form_in_chromium(served: Served, browser: Any) -> None:
    """A form posted once the session and CSRF cookies are gone (expired): the console's 403
    page, styled by its stylesheet with no Content-Security-Policy violation (Django's own page
    held an inline <style>), nothing saved, and its link signs in again back to the form."""
    user = f"expired{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "e@example.com")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{served.base}/admin/login/?next=/admin/accounts/tenant/add/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.fill("#id_name", f"Expired Co {os.getpid()}")
    context.clear_cookies()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("input[name=_save]")
    assert posted.value.status == 403
    page.wait_for_selector(".csrf-failure")
    assert "Your session has ended" in page.locator("#content-main").inner_text()
    # console.css applied (the page's own link; an unstyled page would have no maximum).
    assert page.evaluate(MAX_WIDTH.format(".csrf-failure")) != "none"
    page.click("#csrf-again")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#id_name")
    assert page.url.endswith("/admin/accounts/tenant/add/")
    assert (
        served.manage("shell", "-c", TENANT_NAMED.format(name=f"Expired Co {os.getpid()}")).split()[
            -1
        ]
        == "0"
    )
    context.close()


TENANT_ID = "from accounts.models import Tenant; print(Tenant.objects.get(name={name!r}).pk)"
# Counts the changes of the status region (aria-live: a screen reader reads each one out).
WATCH_REGION = """() => {
  window.regionChanges = 0;
  window.notReloaded = true;
  new MutationObserver(() => window.regionChanges++).observe(
    document.getElementById("calibration-jobs-status"),
    {childList: true, characterData: true, subtree: true});
}"""
FOLLOWED = "#calibration-jobs-status"


def task_worker(served: Served) -> int:
    """The pid of the server's task worker (the child of gunicorn's dirty arbiter)."""
    (arbiter,) = [pid for pid in children(served.pid) if pid not in http_workers(served.pid)]
    (worker,) = children(arbiter)
    return worker


def test_calibrate_page_follows_its_job_without_reloading(served: Served, browser: Any) -> None:
    """While a job runs the page reloaded itself every 3 s, wiping what the operator had typed
    or chosen in the form and their focus (WCAG 2.2.1, 3.2.5). Its script now polls the jobs'
    JSON: the form keeps its value, file and focus over four polls, the status region
    (aria-live) is left alone while its text is the same and says the result when the job
    ends. The task worker is held (SIGSTOP) while the polls are counted, so the job is pending
    however fast this machine runs it, then let go (SIGCONT) well within its 60 s stall bound."""
    user = f"follow{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "f@example.com")
    name, _ = served.new_tenant()
    tenant = served.manage("shell", "-c", TENANT_ID.format(name=name)).split()[-1]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)  # each wait ends on its event; a guard for a loaded machine
    page.goto(f"{served.base}/admin/login/?next=/admin/accounts/tenant/{tenant}/calibrate/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    archive = {"name": "captures.zip", "mimeType": "application/zip", "buffer": captures_zip()}
    page.set_input_files("#id_archive", files=[archive])
    page.click("input[name=_calibrate]")
    assert "queued" in page.locator("ul.messagelist").inner_text()
    held = task_worker(served)
    os.kill(held, signal.SIGSTOP)
    try:
        status = page.locator(FOLLOWED)
        assert status.get_attribute("aria-live") == "polite"
        assert re.fullmatch(r"Job #\d+ (queued|running)\.", status.inner_text())
        assert page.locator("#calibration-refresh").get_attribute("href") == (
            f"/admin/accounts/tenant/{tenant}/calibrate/"
        )  # without JavaScript
        page.evaluate(WATCH_REGION)
        page.set_input_files("#id_archive", files=[archive])  # the next upload, chosen
        page.click("#id_target_apcer")
        page.keyboard.type("7.5")
        for poll in range(4):
            if poll == 1:  # the job as held from here on (it may have started before)
                page.evaluate("window.regionChanges = 0")
            with page.expect_response(lambda r: r.url.endswith("/calibrate/jobs/")) as polled:
                pass
            assert polled.value.status == 200 and polled.value.json()["pending"] is True
        assert page.input_value("#id_target_apcer") == "7.5"
        assert page.evaluate("document.activeElement.id") == "id_target_apcer"
        assert page.evaluate("document.getElementById('id_archive').files.length") == 1
        assert page.evaluate("window.regionChanges") == 0  # the same text: not read out again
    finally:
        os.kill(held, signal.SIGCONT)
    page.wait_for_selector(f"{FOLLOWED}:has-text('done: Calibration #')", timeout=120_000)
    assert re.match(r"Job #\d+ done: Calibration #\d+ stored: threshold", status.inner_text())
    assert page.locator("#calibration-jobs tr.job-done").count() == 1
    assert page.evaluate("window.notReloaded") is True  # the same document all along
    assert page.evaluate("window.regionChanges") >= 1
    assert page.input_value("#id_target_apcer") == "7.5"
    assert page.evaluate("document.activeElement.id") == "id_target_apcer"
    assert page.evaluate("document.getElementById('id_archive').files.length") == 1
    context.close()


def test_a_5xx_poll_of_the_jobs_is_asked_again(served: Served, browser: Any) -> None:
    """One 502 answering the jobs' poll (a proxy while gunicorn restarts) stopped following the
    job for good ("the sign-in may have ended"). A 5xx is asked again a poll later: the page
    still says the job's result."""
    user = f"poll5xx{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "p@example.com")
    name, _ = served.new_tenant()
    tenant = served.manage("shell", "-c", TENANT_ID.format(name=name)).split()[-1]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{served.base}/admin/login/?next=/admin/accounts/tenant/{tenant}/calibrate/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    failed: list[str] = []

    def gateway(route: Any, request: Any) -> None:
        if not failed:  # the first poll only
            failed.append(request.url)
            body = "<html><body><h1>502 Bad Gateway</h1></body></html>"
            route.fulfill(status=502, body=body, headers={"Content-Type": "text/html"})
        else:
            route.continue_()

    page.route("**/calibrate/jobs/", gateway)
    archive = {"name": "captures.zip", "mimeType": "application/zip", "buffer": captures_zip()}
    page.set_input_files("#id_archive", files=[archive])
    page.click("input[name=_calibrate]")
    status = page.locator(FOLLOWED)
    page.wait_for_selector(f"{FOLLOWED}:has-text('done: Calibration #')", timeout=120_000)
    assert len(failed) == 1
    assert "no longer followed" not in status.inner_text()
    context.close()
