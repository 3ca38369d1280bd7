"""Every console page in Debian's chromium (Playwright) against the real server, at 1280 px and
at a phone's 390 px: the product's name, no page wider than the window, no raw JSON dump or
float with more than 6 decimals in what a person reads, the checks list's request id in view,
the tenant page's buttons at work. Screenshots of each page at each width go to a temporary
directory (FACIA_SCREENSHOTS to choose it), never into the repository."""

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import PASSWORD, chromium
from tests.pages import unreadable
from tests.servers.entrypoint import Served, entrypoint_server

pytestmark = pytest.mark.system

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# What each page shows, written by the service's own models (a figure as the engine stores it).
WORLD = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import HashId, Tenant
from calibration.models import Calibration, Evaluation
from capture.models import CaptureSession
from guard.models import Counter, Refusal
from liveness.models import LivenessCheck
bank = Tenant.objects.create(name="Bank of Browsers", request_limit=100, requests_used=97,
                             threshold=0.7246717604179921)
other = Tenant.objects.create(name="Other Co")
HashId.issue(bank)
for i in range(12):
    LivenessCheck.objects.create(
        tenant=bank, is_live=i % 3 != 0, score=0.9989999999999999 - i / 97,
        latency_ms=19.752186999994592 + i, capture="frame" if i % 2 else "crop",
        request_id=f"{i:032x}")
LivenessCheck.objects.create(tenant=bank, refused_code="too_blurry", latency_ms=7.123456789)
today = timezone.now().date()
Refusal.objects.create(day=today, code="invalid_credentials", status=401,
                       client="203.0.113.0/24", hits=1)
Refusal.objects.create(day=today, code="limit_reached", status=429, tenant_id=other.pk, hits=3)
Counter.objects.create(scope="tenant-rate", subject=str(other.pk), bucket=1764700000, hits=2)
figs = {"APCER": [0.25, 0.05, 0.7], "BPCER": [0.0, 0.0, 0.49], "ACER": [0.125, 0.02, 0.6],
        "AUC": [0.8125, 0.5, 1.0]}
Calibration.objects.create(tenant=bank, created_by="op", origin="command", profile="fast",
    params={"a": 0.7122, "b": -0.1155}, threshold=0.7246717604179921, previous_threshold=0.5,
    bona_fide=5, attacks=5, figures={"after": figs})
Evaluation.objects.create(profile="fast", threshold=0.5, bona_fide=4, attacks=4,
    auc=0.8125, report={"scores": {"bona_fide": [0.55, 0.7, 0.9, 0.95],
                                   "attack": [0.1, 0.3, 0.6, 0.8]}, "intervals": figs})
CaptureSession.objects.create(tenant=bank, token_digest="0" * 64, state="done", is_live=True,
    score=0.9989999999999999, capture="frame", frames=3,
    expires_at=timezone.now() + timedelta(minutes=5))
print(bank.pk, HashId.objects.get(tenant=bank).pk,
      LivenessCheck.objects.order_by("pk").first().pk, Calibration.objects.get().pk,
      Evaluation.objects.get().pk, CaptureSession.objects.get().pk)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("console-server")
    with entrypoint_server(work, CAPTURE_DEMO="1", LOG_LEVEL="INFO") as server:
        yield server


@pytest.fixture(scope="module")
def screenshots() -> Path:
    chosen = os.environ.get("FACIA_SCREENSHOTS")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="console-screens-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def operator(served: Served) -> str:
    user = f"console{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "c@example.org")
    return user


@pytest.fixture(scope="module")
def pages(served: Served) -> dict[str, str]:
    """Every page of the console, by a short name, for the world written here."""
    out = served.manage("shell", "-c", WORLD).split()
    tenant, hash_id, check, calibration, evaluation, session = out[-6:]
    return {
        "index": "/admin/",
        "tenants": "/admin/accounts/tenant/",
        "tenant": f"/admin/accounts/tenant/{tenant}/change/",
        "tenant-add": "/admin/accounts/tenant/add/",
        "tenant-history": f"/admin/accounts/tenant/{tenant}/history/",
        "usage": f"/admin/accounts/tenant/{tenant}/usage/",
        "calibrate": f"/admin/accounts/tenant/{tenant}/calibrate/",
        "hash-ids": "/admin/accounts/hashid/",
        "hash-id": f"/admin/accounts/hashid/{hash_id}/change/",
        "checks": "/admin/liveness/livenesscheck/",
        "check": f"/admin/liveness/livenesscheck/{check}/change/",
        "refusals": "/admin/guard/refusal/",
        "counters": "/admin/guard/counter/",
        "calibrations": "/admin/calibration/calibration/",
        "calibration": f"/admin/calibration/calibration/{calibration}/change/",
        "evaluations": "/admin/calibration/evaluation/",
        "evaluation": f"/admin/calibration/evaluation/{evaluation}/change/",
        "sessions": "/admin/capture/capturesession/",
        "session": f"/admin/capture/capturesession/{session}/change/",
        "users": "/admin/auth/user/",
        "groups": "/admin/auth/group/",
        "demo": "/capture/demo",
        "demo-verdict": f"/capture/demo/{session}",
    }


def page_width(page: Any) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth"))


def test_every_console_page_at_1280_and_390_px(
    served: Served, operator: str, pages: dict[str, str], screenshots: Path
) -> None:
    problems: list[str] = []
    with chromium() as browser:
        for width_name, viewport in WIDTHS.items():
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.set_default_timeout(60_000)  # each wait ends on its event; a loaded machine
            page.goto(f"{served.base}/admin/login/")
            assert "Liveness service" in page.locator("#site-name").inner_text()
            page.screenshot(path=str(screenshots / f"login-{width_name}.png"), full_page=True)
            login(page, served, operator, goto=False)
            for name, path in pages.items():
                response = page.goto(f"{served.base}{path}")
                assert response is not None and response.status == 200, path
                page.screenshot(path=str(screenshots / f"{name}-{width_name}.png"), full_page=True)
                text = page.locator("body").inner_text()
                if "Django administration" in text or "Liveness service" not in text:
                    problems.append(f"{name} {width_name}: not the product's header")
                if unreadable(text):
                    problems.append(f"{name} {width_name}: {unreadable(text)[:3]}")
                if page_width(page) > viewport["width"]:
                    problems.append(f"{name} {width_name}: {page_width(page)} px wide")
            context.close()
    assert problems == []


def test_the_checks_list_shows_the_request_id_at_1280_px(
    served: Served, operator: str, pages: dict[str, str]
) -> None:
    with chromium() as browser:
        page = browser.new_context(viewport=WIDTHS["desktop"]).new_page()
        page.set_default_timeout(60_000)
        login(page, served, operator)
        page.goto(f"{served.base}{pages['checks']}")
        results = "document.querySelector('#changelist .results')"
        assert page.evaluate(f"{results}.scrollWidth <= {results}.clientWidth")
        cell = page.locator("td.field-request_id", has_text=re.compile("[0-9a-f]{32}")).first
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
        assert re.fullmatch(r"[0-9a-f]{32}", cell.inner_text().strip())
        latency = page.locator("td.field-latency span").first
        assert re.fullmatch(r"\d+\.\d ms", latency.inner_text())
        assert re.fullmatch(r"\d+\.\d{6,}", latency.get_attribute("title") or "")


def test_the_tenant_pages_buttons(served: Served, operator: str, pages: dict[str, str]) -> None:
    with chromium() as browser:
        page = browser.new_context(viewport=WIDTHS["phone"]).new_page()
        page.set_default_timeout(60_000)
        login(page, served, operator)
        page.goto(f"{served.base}{pages['tenant']}")
        page.click("#reset-quota")
        page.wait_for_selector("ul.messagelist")
        assert "Quota reset for Bank of Browsers." in page.locator("ul.messagelist").inner_text()
        assert page.locator(".field-requests_used .readonly").inner_text() == "0"
        page.click("#issue-hash-id")
        secret = page.locator("code.new-hash-id").inner_text()
        assert len(secret) == 43
        page.goto(f"{served.base}/admin/")
        changes = page.locator("#recent-changes").inner_text()
        assert (
            f"Issued hash_id {secret[:8]}" in changes and "Reset quota (97 used before)" in changes
        )


def login(page: Any, served: Served, user: str, goto: bool = True) -> None:
    if goto:
        page.goto(f"{served.base}/admin/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
