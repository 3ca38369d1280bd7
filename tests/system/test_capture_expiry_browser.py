"""A capture session expiring while its page is open, in chromium with a fake camera whose
face crop never passes (its own module: one Playwright browser runs at a time)."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import PASSWORD, chromium
from tests.servers.entrypoint import Served, entrypoint_server
from tests.system.test_capture_browser import (
    CROP,
    FPS,
    PHONE,
    letterboxed,
    logged_in_page,
    shot,
    write_y4m,
)

pytestmark = pytest.mark.system


TTL_S = 6  # a session's life: a few quality answers, then its token's 401


@pytest.fixture(scope="module")
def short_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo server whose sessions expire while their page is open."""
    work = tmp_path_factory.mktemp("ttl-server")
    with entrypoint_server(work, CAPTURE_DEMO="1", SESSION_TTL_S=str(TTL_S)) as server:
        server.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
        server.manage("createsuperuser", "--noinput", "--username", "ttl", "--email", "t@x.org")
        yield server


@pytest.fixture(scope="module")
def too_close_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A camera showing the face crop only: the capture never passes (face_too_close)."""
    path = tmp_path_factory.mktemp("crop-camera") / "camera.y4m"
    write_y4m(path, [(letterboxed(CROP), FPS)])
    with chromium(
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={path}"
    ) as launched:
        yield launched


def test_a_session_expiring_on_the_page_leaves_a_way_forward(
    short_served: Served, too_close_browser: Any
) -> None:
    """The token expiring mid-capture left "Start again." and a Cancel that did nothing as the
    only control. The dead controls go; the message says to reload, and the demo page (the host
    app, which alone opens sessions) offers a new capture, focused."""
    tenant, _ = short_served.new_tenant(limit=5)
    page = logged_in_page(
        short_served, too_close_browser, "ttl", permissions=["camera"], viewport=PHONE
    )
    page.select_option("#id_tenant", label=tenant)
    page.click("#demo-form button[type=submit]")
    page.wait_for_selector(".lc-root[data-message=face_too_close]")
    page.locator(".lc-cancel").focus()  # a keyboard user on the only control
    page.wait_for_selector(".lc-root[data-message=session_expired]", timeout=(TTL_S + 30) * 1000)
    status = page.locator(".lc-status")
    assert status.get_attribute("role") == "alert"
    assert "Reload the page to start a new one" in status.inner_text()
    assert page.locator(".lc-actions button:visible").count() == 0
    again = page.locator("#again")
    assert again.is_visible() and again.get_attribute("href") == "/capture/demo"
    assert page.evaluate("document.activeElement.id") == "again"
    assert page.locator("#outcome").get_attribute("data-code") == "session_expired"
    shot(page, "expired-way-forward")
    page.context.close()
