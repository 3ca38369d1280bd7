"""Text an operator, a client or a data set chose (a tenant's name, a refusal code, a login's
username as a throttle subject, a calibration's author, an evaluation's sources and PAI species,
a client's X-Request-ID) shows escaped on every console page it reaches: the audit's regression
tests (Django's test client, the real admin). Usernames themselves pass Django's validator
(letters, digits and @.+-_ only)."""

import re
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from accounts import audit
from accounts.models import HashId, Tenant
from calibration.management.commands.evaluate import store
from capture.models import CaptureSession
from guard.login import IP_SCOPE
from guard.models import Counter, Refusal
from liveness.models import LivenessCheck
from ml.evaluate import Report, Sample
from tests.conftest import LIVE_JPG, Post, data_uri, stored_calibration

pytestmark = pytest.mark.django_db

# Ends an attribute value and opens an element: shown as text only when escaped.
HOSTILE = "\"'><x-injected>"
RAW, ESCAPED = "<x-injected", "&lt;x-injected&gt;"


def hostile_report() -> Report:
    """A report whose sources, subjects and PAI species are HOSTILE (scores made up)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(40):
        label = "live" if i % 2 else "spoof"
        p = float(rng.uniform(0.05, 0.95))
        scores = {"minifasnet_v2": p, "minifasnet_v1se": p, "hyperfas": p}
        species = "none" if label == "live" else f"{HOSTILE}{i % 3}"
        samples.append(
            Sample(
                f"{label}/{i}.jpg",
                label,
                species,
                [],
                scores,
                capture="frame",
                source=f"{HOSTILE}{i % 4}",
                subject=f"{HOSTILE}{i % 8}",
            )
        )
    return Report(0.5, "fast", f"/data/{HOSTILE}", samples, tenant=HOSTILE, resamples=100)


@pytest.fixture
def pages() -> list[str]:
    """A row of each kind with HOSTILE in its text; the pages that show them."""
    user = User.objects.create_user(username="op", password="x", is_staff=True)
    tenant = Tenant.objects.create(name=HOSTILE, request_limit=10, requests_used=10)
    HashId.issue(tenant)
    LivenessCheck.objects.create(tenant=tenant, refused_code=HOSTILE, latency_ms=1.0)
    today = timezone.now().date()
    Refusal.objects.create(day=today, code=HOSTILE, status=401, client="203.0.113.0/24", hits=5)
    Refusal.objects.create(day=today, code="limit_reached", status=429, tenant_id=tenant.pk)
    Counter.objects.create(scope=IP_SCOPE, subject=HOSTILE, bucket=1_764_700_000, hits=2)
    figures = {"version": 2, "sentences": [HOSTILE], "refused": {HOSTILE: 2}, "now": {}}
    figures |= {"held_out_needs": HOSTILE, "maps": {}, "threshold": {"rule": HOSTILE}}
    calibration = stored_calibration(tenant, created_by=HOSTILE, origin=HOSTILE, figures=figures)
    calibration.activate()
    audit.record(tenant, HOSTILE, user)
    evaluation = store(hostile_report(), tenant=tenant)  # the list names its tenant
    session = CaptureSession.objects.create(tenant=tenant, expires_at=timezone.now())
    t = f"/admin/accounts/tenant/{tenant.pk}"
    return [
        "/admin/",
        "/admin/accounts/tenant/",
        f"{t}/change/",
        f"{t}/usage/",
        f"{t}/calibrate/",
        f"{t}/history/",
        f"{t}/delete/",
        "/admin/accounts/hashid/",
        "/admin/liveness/livenesscheck/",
        "/admin/guard/refusal/",
        "/admin/guard/counter/",
        "/admin/calibration/calibration/",
        f"/admin/calibration/calibration/{calibration.pk}/change/",
        "/admin/calibration/evaluation/",
        f"/admin/calibration/evaluation/{evaluation.pk}/change/",
        "/admin/capture/capturesession/",
        f"/admin/capture/capturesession/{session.pk}/change/",
    ]


def test_hostile_text_is_escaped_on_every_page(admin_client: Any, pages: list[str]) -> None:
    for url in pages:
        response = admin_client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert ESCAPED in html, url  # the text reached the page
        assert RAW not in html, url


def test_hostile_name_is_escaped_on_the_task_pages(admin_client: Any) -> None:
    """The pages answering the tenant page's buttons and list actions, and their messages."""
    tenant = Tenant.objects.create(name=HOSTILE, request_limit=10, requests_used=10)
    t = f"/admin/accounts/tenant/{tenant.pk}"
    selected = {"_selected_action": [str(tenant.pk)]}
    for url, data in (
        (f"{t}/reset-quota/", {}),
        (f"{t}/issue/", {}),
        ("/admin/accounts/tenant/", {"action": "reset_quota", **selected}),
        ("/admin/accounts/tenant/", {"action": "issue_hash_id", **selected}),
    ):
        html = admin_client.post(url, data, follow=True).content.decode()
        assert ESCAPED in html and RAW not in html, url


@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("sent", [HOSTILE, '=HYPERLINK("http://x")', "id\r\nX-Evil: 1"])
def test_a_client_request_id_reaches_the_checks_list_only_when_sane(
    admin_client: Any, make_tenant: Any, post_liveness: Post, sent: str
) -> None:
    """/liveness stores the client's X-Request-ID and the checks list shows it: one outside
    [A-Za-z0-9._:-]{1,128} is replaced by a fresh id before either."""
    _, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    answer = post_liveness(body, HTTP_X_REQUEST_ID=sent)
    assert answer.status_code == 201
    stored = LivenessCheck.objects.get().request_id
    assert re.fullmatch(r"[0-9a-f]{32}", stored) and stored == answer["X-Request-ID"]
    listing = admin_client.get("/admin/liveness/livenesscheck/").content.decode()
    assert stored in listing and RAW not in listing and "HYPERLINK" not in listing
