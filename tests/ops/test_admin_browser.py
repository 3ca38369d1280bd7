"""The admin in a real browser (Debian's chromium driven by Playwright) against the real server.

Log in, create a tenant, see its hash_id once, use it, revoke it, open the usage chart,
calibrate it from an uploaded zip and revert it; screenshots are kept as
artifacts/admin-usage.png and artifacts/admin-calibration.png.
"""

import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.conftest import LIVE_JPG, REPO, SPOOF_JPG, data_uri, skip_or_fail
from tests.ops.conftest import Served

ARTIFACTS = REPO / "artifacts"
SECRET = re.compile(r"New hash_id for .+?: (\S+) ")
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
    if not Path(CHROMIUM).is_file():
        skip_or_fail(
            f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium when it can "
            "(apt-get install chromium); set FACIA_CHROMIUM to another binary"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def post(served: Served, hash_id: str, path: Path) -> int:
    body = {"hash_id": hash_id, "selfie_image": data_uri(path)}
    return requests.post(f"{served.base}/liveness", json=body, timeout=30).status_code


def test_operator_flow_in_chromium(served: Served, browser: Any) -> None:
    user = f"op{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "op@example.com")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)

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
    message = page.locator("ul.messagelist").inner_text()
    found = SECRET.search(message + " ")
    assert found, message
    hash_id = found.group(1)
    assert [post(served, hash_id, LIVE_JPG), post(served, hash_id, SPOOF_JPG)] == [201, 201]
    served.manage("shell", "-c", HISTORY.format(name=name))

    page.goto(f"{served.base}/admin/accounts/tenant/")
    page.click(f"#result_list >> text={name}")
    page.wait_for_selector("#tenant_form")
    assert hash_id not in page.content()  # shown once, never again
    assert hash_id[:8] in page.content()

    # Revoke it from the hash_id list; the service refuses it from then on.
    page.goto(f"{served.base}/admin/accounts/hashid/?q={hash_id[:8]}")
    page.check("input.action-select")
    page.select_option("select[name=action]", "revoke")
    page.click("button[name=index]")
    assert "Revoked 1 hash_id(s)." in page.locator("ul.messagelist").inner_text()
    assert post(served, hash_id, LIVE_JPG) == 401

    # The usage chart, from the tenant's change page.
    page.goto(f"{served.base}/admin/accounts/tenant/")
    page.click(f"#result_list >> text={name}")
    page.click("#usage-link")
    page.wait_for_selector("#usage-chart")
    assert page.locator("#quota-remaining").inner_text() == "48"
    assert page.locator("#usage-chart rect.bar.live").count() >= 2
    assert page.locator("#usage-chart rect.bar.spoof").count() >= 2
    assert page.locator("#usage-chart rect.bar.refused").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-usage.png"), full_page=True)
    assert (ARTIFACTS / "admin-usage.png").stat().st_size > 10_000

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
    page.wait_for_selector("#calibration-status", timeout=120_000)
    message = page.locator("ul.messagelist").inner_text()
    stored = re.search(r"Calibration #(\d+) stored: threshold (\d\.\d{4})", message)
    assert stored, message
    assert "fewer than 30" in message  # a small sample is flagged
    status = page.locator("#calibration-status").inner_text()
    assert f"Calibration #{stored.group(1)}" in status and "admin upload" in status
    assert page.locator("table.calibration-figures tbody tr").count() == 3  # before/after/CV
    assert "cross-validated" in status and "APCER" in status
    page.screenshot(path=str(ARTIFACTS / "admin-calibration.png"), full_page=True)

    page.goto(f"{served.base}/admin/accounts/tenant/?q={name.split()[0]}")
    page.check(f"#result_list tr:has-text('{name}') input.action-select")
    page.select_option("select[name=action]", "revert_to_uncalibrated")
    page.click("button[name=index]")
    assert f"{name}: uncalibrated, threshold 0.5000" in page.locator("ul.messagelist").inner_text()
    page.click(f"#result_list >> text={name}")
    assert "Uncalibrated" in page.locator("#tenant_form").inner_text()
    page.close()


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
