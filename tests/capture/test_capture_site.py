"""Schema, static component, demo page switch (every method), burst fusion: no engine needed."""

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test.client import Client

from accounts.models import HashId, Tenant
from capture.models import CaptureSession
from ml import profiles
from ml.engine import Verdict, fuse
from ml.profiles import DEFAULT_PROFILE

EXPECTED = {
    "/sessions": ("post", {"201", "400", "401", "429"}),
    "/sessions/{session_id}": ("get", {"200", "401", "404", "429"}),
    "/sessions/{session_id}/quality": ("post", {"200", "400", "401", "404", "409", "429"}),
    "/sessions/{session_id}/selfie": (
        "post",
        {"202", "400", "401", "404", "409", "413", "422", "429", "503"},
    ),
}


def test_schema_documents_the_sessions_api(db: None, client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path, (method, statuses) in EXPECTED.items():
        operation = schema["paths"][path][method]
        assert set(operation["responses"]) >= statuses, path
    selfie = schema["paths"]["/sessions/{session_id}/selfie"]["post"]
    assert selfie["security"] == [{"sessionToken": []}]
    read = schema["paths"]["/sessions/{session_id}"]["get"]
    assert read["security"] == [{"hashIdHeader": []}]
    assert any(p["name"] == "X-Hash-Id" and p["in"] == "header" for p in read["parameters"])
    schemes = schema["components"]["securitySchemes"]
    assert schemes["sessionToken"] == {"type": "http", "scheme": "bearer"}
    assert "/liveness" in schema["paths"]  # unchanged


def test_component_is_served_as_a_module(db: None, client: Client) -> None:
    response = client.get("/static/liveness/capture.js")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert response["Access-Control-Allow-Origin"] == "*"  # a module may load cross-origin
    source = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]  # a static file streams
    assert "export function startCapture" in source and "http" not in source.split("\n", 1)[0]


def test_demo_page_is_off_by_default(db: None, client: Client) -> None:
    assert client.get("/capture/demo").status_code == 404


def test_demo_page_needs_staff(db: None, client: Client, settings: Any) -> None:
    settings.CAPTURE_DEMO = True
    response = client.get("/capture/demo")
    assert response.status_code == 302 and "/login/" in response["Location"]


def verdict(logit: float, capture: str = "frame") -> Verdict:
    return Verdict(0.0, (0, 0, 1, 1), 1.0, capture=capture, logit=logit)


def test_burst_fuses_in_logit_space() -> None:
    fused = fuse([verdict(6.9), verdict(0.0), verdict(0.0)])  # 0.999, 0.5, 0.5
    assert fused.logit == pytest.approx(2.3)
    # P(live) is the shipped frame map of the mean logit (sigmoid: 0.909; a probability mean
    # of the frames gives 0.67)
    assert fused.p_live == pytest.approx(profiles.shipped(DEFAULT_PROFILE, "frame").p(2.3))
    assert (fused.capture, fused.frames) == ("frame", 3)
    assert fuse([verdict(1.0), verdict(1.0, "crop")]).capture == "crop"


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/capture/demo", f"/capture/demo/{uuid.uuid4()}"])
def test_the_demo_switched_off_is_a_json_404_to_every_method(
    db: None, method: str, path: str
) -> None:
    """As an unknown path, whatever the method: not the CSRF check's 403 HTML page (the check
    on, as gunicorn serves), which would tell that the page exists."""
    answer = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert answer.status_code == 404
    assert answer.json() == {"error": "Not found."}


def test_the_demo_switched_on_still_checks_csrf(db: None, settings: Any) -> None:
    """Once on, a staff member's POST without the form's CSRF token is refused."""
    settings.CAPTURE_DEMO = True
    staff = User.objects.create_superuser("demo-admin", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get("/capture/demo").status_code == 200
    assert client.post("/capture/demo", {"tenant": "1", "lang": "en"}).status_code == 403


def test_the_demo_applies_the_quota_check_of_post_sessions(db: None, settings: Any) -> None:
    """A tenant with no unit left: the page says so and opens no session. It opened one,
    whose selfie POST /sessions' own check would then have refused (429)."""
    settings.CAPTURE_DEMO = True
    tenant = Tenant.objects.create(name="spent", request_limit=2, requests_used=2)
    HashId.issue(tenant)
    client = Client()
    client.force_login(User.objects.create_superuser("demo-admin", password="x"))
    page = client.post("/capture/demo", {"tenant": str(tenant.pk), "lang": "en"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Your request limit has been reached." in text
    assert "used its 2 unit(s)" in text
    assert 'id="capture"' not in text
    assert not CaptureSession.objects.exists()
    # With a unit left, the session opens.
    Tenant.objects.filter(pk=tenant.pk).update(requests_used=1)
    page = client.post("/capture/demo", {"tenant": str(tenant.pk), "lang": "en"})
    assert 'id="capture"' in page.content.decode()
    assert CaptureSession.objects.filter(tenant=tenant).count() == 1


def test_the_demo_checks_the_verdict_permission_before_opening_a_session(
    db: None, settings: Any
) -> None:
    """With add_capturesession and view_tenant but not the permission to view capture
    sessions, the demo opened a session (its selfie then spent a unit) and the capture ended on
    the verdict page's bare 403. The demo page itself refuses, opens nothing and says what is
    missing."""
    settings.CAPTURE_DEMO = True
    tenant = Tenant.objects.create(name="Demo Co", request_limit=5)
    HashId.issue(tenant)
    user = User.objects.create_user("half-operator", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["add_capturesession", "view_tenant"])
    )
    client = Client()
    client.force_login(user)
    for page in (
        client.get("/capture/demo"),
        client.post("/capture/demo", {"tenant": str(tenant.pk), "lang": "en"}),
    ):
        assert page.status_code == 403
        text = page.content.decode()
        assert "may not run the capture demo" in text
        assert "capture.view_capturesession" in text and "accounts.view_tenant" not in text
        assert 'id="capture"' not in text and "Demo Co" not in text
    assert not CaptureSession.objects.exists()
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    user.user_permissions.add(Permission.objects.get(codename="view_capturesession"))
    client.force_login(User.objects.get(pk=user.pk))  # its permissions read again
    page = client.post("/capture/demo", {"tenant": str(tenant.pk), "lang": "en"})
    assert page.status_code == 200 and 'id="capture"' in page.content.decode()
    assert CaptureSession.objects.filter(tenant=tenant).count() == 1
