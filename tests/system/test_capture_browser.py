"""The capture component in Debian's chromium (Playwright) with a fake camera, against gunicorn.

The camera is a .y4m file written here from dev images (read in place): a face crop first
(the guidance asks to move back), then a full frame (auto-capture, verdict on the demo page).
A second run denies the camera. Screenshots of each state go to artifacts/capture-*.png.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests.browser import PASSWORD, chromium
from tests.conftest import DEV_DATA, LIVE_JPG, REPO
from tests.servers.entrypoint import Served, entrypoint_server

pytestmark = pytest.mark.system

ARTIFACTS = REPO / "artifacts"
CROP = DEV_DATA / "live" / "wolf_1.png"  # a dev face crop
WIDTH, HEIGHT, FPS = 480, 640, 5  # LIVE_JPG (minivision_1) is a 480x640 portrait frame
CROP_SECONDS, FRAME_SECONDS = 4, 20
PHONE = {"width": 390, "height": 844}


def letterboxed(path: Path) -> np.ndarray:
    """``path`` scaled to the camera's width, centred on a black WIDTH x HEIGHT canvas."""
    image = cv2.imread(str(path))
    assert image is not None, path
    scale = min(WIDTH / image.shape[1], HEIGHT / image.shape[0])
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    top, left = (HEIGHT - resized.shape[0]) // 2, (WIDTH - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def write_y4m(path: Path, frames: list[tuple[np.ndarray, int]]) -> None:
    """YUV4MPEG2 (I420), each image repeated the given number of frames."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for image, count in frames:
            planes = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()
            for _ in range(count):
                out.write(b"FRAME\n" + planes)


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    crop, frame = letterboxed(CROP), letterboxed(LIVE_JPG)
    write_y4m(path, [(crop, CROP_SECONDS * FPS), (frame, FRAME_SECONDS * FPS)])
    return path


@pytest.fixture(scope="module")
def browser(camera_file: Path) -> Iterator[Any]:
    fake_camera = f"--use-file-for-fake-video-capture={camera_file}"
    with chromium("--use-fake-device-for-media-stream", fake_camera) as launched:
        yield launched


@pytest.fixture(scope="module")
def operator(demo_served: Served) -> str:
    user = f"cap{os.getpid()}"
    demo_served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    demo_served.manage("createsuperuser", "--noinput", "--username", user, "--email", "c@x.org")
    return user


def logged_in_page(served: Served, browser: Any, user: str, **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{served.base}/admin/login/?next=/capture/demo")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#demo-form")
    return page


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"capture-{name}.png"), full_page=True)


def test_guided_capture_then_verdict(demo_served: Served, browser: Any, operator: str) -> None:
    tenant, secret = demo_served.new_tenant(limit=5)
    page = logged_in_page(demo_served, browser, operator, permissions=["camera"], viewport=PHONE)
    shot(page, "form")
    page.select_option("#id_tenant", label=tenant)
    page.click("#demo-form button[type=submit]")
    session_id = page.locator("#session-id").inner_text()

    # The crop fills the frame: the component asks to move back, in words and for screen readers.
    page.wait_for_selector(".lc-root[data-message=face_too_close]")
    status = page.locator(".lc-status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"
    assert "Move back" in status.inner_text()
    shot(page, "guidance")
    page.wait_for_selector(".lc-root[data-phase=pass]", timeout=60_000)
    shot(page, "hold-still")
    page.wait_for_url(f"**/capture/demo/{session_id}", timeout=60_000)
    page.wait_for_selector("#verdict")
    assert page.locator("#state").inner_text() == "done"
    assert page.locator("#verdict").inner_text().startswith("Live")
    shot(page, "verdict")

    read = requests.get(
        f"{demo_served.base}/sessions/{session_id}", headers={"X-Hash-Id": secret}, timeout=30
    ).json()
    assert read["state"] == "done" and read["capture"] == "frame" and read["frames"] == 3
    assert read["liveness_result"]["is_live"] == 1
    page.context.close()


def test_camera_permission_denied(demo_served: Served, browser: Any, operator: str) -> None:
    tenant, _ = demo_served.new_tenant(limit=5)
    page = logged_in_page(demo_served, browser, operator, viewport={"width": 1024, "height": 768})
    page.select_option("#id_tenant", label=tenant)
    page.click("#demo-form button[type=submit]")
    page.wait_for_selector(".lc-root[data-message=permission_denied]")
    assert page.locator(".lc-status").get_attribute("role") == "alert"
    assert "Camera access was denied" in page.locator(".lc-status").inner_text()
    assert page.locator("#outcome").get_attribute("data-code") == "permission_denied"
    assert page.locator(".lc-retry").is_visible()
    shot(page, "denied")
    page.context.close()


EXPIRE = """
from datetime import timedelta
from django.utils import timezone
from capture.models import CaptureSession
CaptureSession.objects.filter(pk={sid!r}).update(expires_at=timezone.now() - timedelta(seconds=1))
"""
START = """([sessionId, token]) => new Promise((resolve) => {
  const element = document.createElement("div");
  document.body.prepend(element);
  import("/static/liveness/capture.js").then(({ startCapture }) => startCapture({
    sessionId, token, element, lang: "fr", onDone: () => resolve("done"),
    onError: ({ code, message }) => resolve(`${code}: ${message}`),
  }));
})"""


def test_expired_session_reported_in_french(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """An integrator's page (any page of the origin) starts the component on an expired session."""
    _, secret = demo_served.new_tenant(limit=5)
    opened = requests.post(f"{demo_served.base}/sessions", json={"hash_id": secret}, timeout=30)
    sid, token = opened.json()["session_id"], opened.json()["token"]
    demo_served.manage("shell", "-c", EXPIRE.format(sid=sid))
    page = logged_in_page(demo_served, browser, operator, permissions=["camera"], viewport=PHONE)
    outcome = page.evaluate(START, [sid, token])
    assert outcome == (
        "session_expired: Cette session de capture a expiré. "
        "Rechargez la page pour en commencer une nouvelle."
    )
    assert page.locator(".lc-status").get_attribute("role") == "alert"
    shot(page, "expired-fr")
    page.context.close()


# A guard against a hang, far above the one quality call the quota takes.
TIMED_OUT = 'new Promise((resolve) => setTimeout(() => resolve("no outcome in 60 s"), 60000))'
USE_UP = """
from accounts.models import Tenant
Tenant.objects.filter(name={name!r}).update(requests_used=1)
"""


def test_tenant_out_of_quota_ends_the_capture_before_any_selfie(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """The quality call answers the quota's 429 once the tenant is at its limit: the component
    reports `quota` at once instead of polling or taking a photo."""
    name, secret = demo_served.new_tenant(limit=1)
    opened = requests.post(f"{demo_served.base}/sessions", json={"hash_id": secret}, timeout=30)
    sid, token = opened.json()["session_id"], opened.json()["token"]
    demo_served.manage("shell", "-c", USE_UP.format(name=name))
    page = logged_in_page(demo_served, browser, operator, permissions=["camera"], viewport=PHONE)
    calls: list[str] = []
    page.on("request", lambda request: calls.append(request.url.rsplit("/", 1)[-1]))
    within = f"(args) => Promise.race([({START})(args), {TIMED_OUT}])"
    outcome = page.evaluate(within, [sid, token])
    assert outcome.startswith("quota: "), outcome
    assert "quality" in calls and "selfie" not in calls
    page.context.close()


# Each quality call counts against the budget; 3 are answered (the crop: face_too_close).
BUDGET = 3
CAMERA_LIVE = """() => {
  const video = document.querySelector(".lc-root video");
  const stream = video && video.srcObject;
  return Boolean(stream && stream.getTracks().some((track) => track.readyState === "live"));
}"""


@pytest.fixture(scope="module")
def budget_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo server with a session call budget a capture spends in a second."""
    work = tmp_path_factory.mktemp("budget-server")
    with entrypoint_server(work, CAPTURE_DEMO="1", SESSION_CALL_BUDGET=str(BUDGET)) as server:
        server.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
        server.manage("createsuperuser", "--noinput", "--username", "budget", "--email", "b@x.org")
        yield server


def test_spent_session_budget_ends_the_capture_at_once(budget_served: Served, browser: Any) -> None:
    """The budget's 429 (`session_calls_spent`, Retry-After the session's remaining life, about
    300 s) was read as a rate limit: "One moment…" with the camera on until the session
    expired. It ends the capture on the next answer: its own message, camera off, onError."""
    _, secret = budget_served.new_tenant(limit=5)
    opened = requests.post(f"{budget_served.base}/sessions", json={"hash_id": secret}, timeout=30)
    sid, token = opened.json()["session_id"], opened.json()["token"]
    page = logged_in_page(budget_served, browser, "budget", permissions=["camera"], viewport=PHONE)
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if "/quality" in r.url else None)
    within = f"(args) => Promise.race([({START})(args), {TIMED_OUT}])"
    outcome = page.evaluate(within, [sid, token])
    assert outcome == (
        "session_calls_spent: Cette session de capture a fait tous ses appels. "
        "Commencez-en une nouvelle."
    )
    assert answers.count(200) == BUDGET and answers[-1] == 429  # none after the budget's 429
    assert page.locator(".lc-root").get_attribute("data-message") == "session_calls_spent"
    assert page.locator(".lc-status").get_attribute("role") == "alert"
    assert page.evaluate(CAMERA_LIVE) is False
    shot(page, "calls-spent-fr")
    page.context.close()


# The component started on the page, its outcome in window.__outcome; quality answers from the
# real server held in the page until window.__release() (a call "in flight" on demand).
HELD_START = """([sessionId, token, hold]) => {
  window.__outcome = null;
  window.__held = [];
  let firstHeld;
  window.__firstHeld = new Promise((resolve) => (firstHeld = resolve));
  const realFetch = window.fetch.bind(window);
  window.fetch = async (url, init) => {
    const reply = await realFetch(url, init);
    if (!hold || !String(url).endsWith("/quality")) return reply;
    const body = await reply.text();
    await new Promise((release) => window.__held.push(release) && firstHeld());
    return new Response(body, { status: reply.status, headers: reply.headers });
  };
  window.__release = () => window.__held.splice(0).forEach((release) => release());
  const element = document.createElement("div");
  document.body.prepend(element);
  return import("/static/liveness/capture.js").then(({ startCapture }) => {
    startCapture({ sessionId, token, element,
      onDone: () => (window.__outcome = "done"),
      onError: ({ code }) => (window.__outcome = code) });
  });
}"""
# A few turns of the event loop: what an answer's handlers do runs within them.
TICKS = """() => new Promise((done) => {
  let n = 8;
  const tick = () => (n-- ? setTimeout(tick) : done());
  tick();
})"""


def started(served: Served, browser: Any, user: str, hold: bool = False) -> Any:
    """A page of the server's origin running the component on a new session."""
    _, secret = served.new_tenant(limit=5)
    opened = requests.post(f"{served.base}/sessions", json={"hash_id": secret}, timeout=30)
    sid, token = opened.json()["session_id"], opened.json()["token"]
    page = logged_in_page(served, browser, user, permissions=["camera"], viewport=PHONE)
    page.evaluate(HELD_START, [sid, token, hold])
    return page


def test_cancel_during_a_quality_call_stays_cancelled_and_try_again_restarts(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """Escape while a quality call was out: its answer overwrote "Capture cancelled." (3 of 6
    tries) and nothing could restart. The answer is dropped; "Try again" (focused) starts over."""
    page = started(demo_served, browser, operator, hold=True)
    page.evaluate("window.__firstHeld")  # a quality call answered by the server, held here
    page.locator(".lc-cancel").press("Escape")
    page.evaluate("window.__release()")
    page.evaluate(TICKS)
    status = page.locator(".lc-status")
    assert status.inner_text() == "Capture cancelled."
    retry = page.locator(".lc-retry")
    assert retry.is_visible() and retry.inner_text() == "Try again"
    assert page.evaluate("document.activeElement.className") == "lc-retry"
    with page.expect_request(lambda r: r.url.endswith("/quality")):
        page.keyboard.press("Enter")
    page.evaluate("window.__release()")
    assert status.inner_text() != "Capture cancelled."
    page.context.close()


def test_a_camera_unplugged_mid_session_is_reported(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """The video track ending (the device gone) was never reported: 42-47 quality calls of a
    frozen frame. It ends the capture with camera_failed, said as an alert, and the retry."""
    page = started(demo_served, browser, operator)
    page.wait_for_selector(".lc-root[data-message=face_too_close]")
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if r.url.endswith("/quality") else None)
    page.evaluate(
        """() => { const track = document.querySelector("video").srcObject.getVideoTracks()[0];
        track.stop(); track.dispatchEvent(new Event("ended")); }"""
    )
    page.wait_for_selector(".lc-root[data-message=camera_failed]")
    assert page.evaluate("window.__outcome") == "camera_failed"
    assert page.locator(".lc-status").get_attribute("role") == "alert"
    assert page.locator(".lc-retry").is_visible()
    before = len(calls)
    page.evaluate(TICKS)
    assert len(calls) == before <= 1  # at most the call already out
    page.context.close()


LANGS = """async () => {
  document.documentElement.lang = "de";
  const { startCapture } = await import("/static/liveness/capture.js");
  const langs = [];
  for (const options of [{}, { lang: "fr" }, { lang: "de", messages: { cancel: "Abbrechen" } }]) {
    const element = document.createElement("div");
    document.body.append(element);
    const capture = startCapture({ sessionId: "x", token: "x", element, ...options });
    langs.push([capture.element.lang, capture.element.querySelector(".lc-cancel").textContent]);
    capture.stop();
  }
  return langs;
}"""


def test_the_component_says_which_language_its_text_is_in(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """WCAG 3.1.2: on a lang="de" page the component's English (or French) text had no lang of
    its own, read with the page's German voice. Its root says the language chosen: the one it
    fell back to, the one asked, or the integrator's own with its messages."""
    page = logged_in_page(demo_served, browser, operator, permissions=["camera"], viewport=PHONE)
    assert page.evaluate(LANGS) == [["en", "Cancel"], ["fr", "Annuler"], ["de", "Abbrechen"]]
    page.context.close()


# A phone turned sideways, the same upright, a laptop.
SCREENS = [
    {"width": 640, "height": 360},
    {"width": 360, "height": 640},
    {"width": 1280, "height": 720},
]
OUTSIDE = """(selectors) => selectors.flatMap((selector) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  const inside = box.height > 0 && box.top >= 0 && box.left >= 0 &&
    box.bottom <= window.innerHeight && box.right <= window.innerWidth;
  return inside ? [] : [`${selector} ${JSON.stringify(box)}`];
})"""


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: f"{s['width']}x{s['height']}")
def test_video_instruction_and_status_are_all_on_screen(
    demo_served: Served, browser: Any, operator: str, screen: dict[str, int]
) -> None:
    """At 640x360 (a phone sideways) the 4:3 stage alone was 480 px high: the help and the status
    line sat below the screen. The video, the help and the status line are all in the viewport,
    with no scrolling by the person, sideways, upright and on a laptop."""
    tenant, _ = demo_served.new_tenant(limit=5)
    page = logged_in_page(demo_served, browser, operator, permissions=["camera"], viewport=screen)
    page.select_option("#id_tenant", label=tenant)
    page.click("#demo-form button[type=submit]")
    page.wait_for_selector(".lc-root[data-message=face_too_close]")
    assert page.evaluate(OUTSIDE, [".lc-stage video", ".lc-help", ".lc-status"]) == []
    name = f"{screen['width']}x{screen['height']}"
    shot(page, f"screen-{name}")
    page.screenshot(path=str(ARTIFACTS / f"capture-viewport-{name}.png"))
    page.context.close()


def demo_capture(served: Served, browser: Any, user: str, route: str, handler: Any) -> Any:
    """The demo page running a capture whose calls to ``route`` (a glob) go through
    ``handler`` (Playwright's route handler)."""
    tenant, _ = served.new_tenant(limit=5)
    page = logged_in_page(served, browser, user, permissions=["camera"], viewport=PHONE)
    page.select_option("#id_tenant", label=tenant)
    page.route(route, handler)
    page.click("#demo-form button[type=submit]")
    return page


def test_a_passing_503_is_waited_out(demo_served: Served, browser: Any, operator: str) -> None:
    """A 503 with Retry-After (the database briefly locked) ended the capture with "The service
    could not be reached. Check the connection.". It is waited out as a rate's 429 is: the
    capture goes on to its verdict."""
    busy: list[str] = []

    def locked(route: Any, request: Any) -> None:
        if len(busy) < 3:  # three quality calls in a row
            busy.append(request.url)
            body = {"error": "Service temporarily unavailable (database busy)."}
            headers = {"Content-Type": "application/json", "Retry-After": "1"}
            route.fulfill(status=503, body=json.dumps(body), headers=headers)
        else:
            route.continue_()

    page = demo_capture(demo_served, browser, operator, "**/sessions/*/quality", locked)
    session_id = page.locator("#session-id").inner_text()
    page.wait_for_url(f"**/capture/demo/{session_id}", timeout=90_000)
    assert len(busy) == 3
    assert page.locator("#state").inner_text() == "done"
    page.context.close()


@pytest.mark.parametrize(
    ("status", "code", "said"),
    [
        (500, "service_error", "The service had a problem."),
        (502, "service_error", "The service had a problem."),
        (400, "bad_request", "The service could not read the photo."),
        (413, "bad_request", "The service could not read the photo."),
    ],
)
def test_a_service_failure_is_not_blamed_on_the_connection(
    demo_served: Served, browser: Any, operator: str, status: int, code: str, said: str
) -> None:
    """Every 4xx/5xx but the session's own was reported as `network`, "Check the connection",
    though the service had answered. A 5xx is `service_error`, a 400 or 413 `bad_request`."""

    def refused(route: Any, request: Any) -> None:
        route.fulfill(status=status, body="<html><body>refused</body></html>", headers={})

    page = demo_capture(demo_served, browser, operator, "**/sessions/*/quality", refused)
    page.wait_for_selector(f".lc-root[data-message={code}]")
    text = page.locator(".lc-status").inner_text()
    assert text.startswith(said) and "connection" not in text
    assert page.locator("#outcome").get_attribute("data-code") == code
    assert page.locator(".lc-retry").is_visible()
    page.context.close()


def test_a_selfie_whose_answer_was_lost_ends_in_its_verdict(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """The selfie judged (its unit spent), then its 202 lost on the way back (the connection
    reset): the next call's 409 (state done) ended the capture with session_done. It ends in
    onDone: the demo opens the verdict."""
    judged: list[int] = []

    def lose(route: Any, request: Any) -> None:
        judged.append(route.fetch().status)  # the service judges the selfie
        route.abort("connectionreset")  # its answer never reaches the page

    page = demo_capture(demo_served, browser, operator, "**/sessions/*/selfie", lose)
    session_id = page.locator("#session-id").inner_text()
    page.wait_for_url(f"**/capture/demo/{session_id}", timeout=90_000)
    assert judged == [202]
    assert page.locator("#state").inner_text() == "done"
    assert page.locator("#verdict").inner_text().startswith("Live")
    page.context.close()


def test_a_selfie_lost_while_still_judged_ends_in_its_verdict(
    demo_served: Served, browser: Any, operator: str
) -> None:
    """The selfie's 202 lost, and the next call answered while the service still judged it
    (0.1-0.3 s): 409 with state processing, which ended the capture with session_done. It is
    waited out as a 503 is; the answer after it (state done) ends in onDone: the verdict."""
    judged: list[int] = []
    busy: list[str] = []

    def calls(route: Any, request: Any) -> None:
        if request.url.endswith("/selfie") and not judged:
            judged.append(route.fetch().status)  # the service judges the selfie
            route.abort("connectionreset")  # its answer never reaches the page
        elif request.url.endswith("/quality") and judged and not busy:
            busy.append(request.url)
            body = {
                "error": "A selfie of this session is already being judged.",
                "code": "session_busy",
                "state": "processing",
            }
            headers = {"Content-Type": "application/json"}
            route.fulfill(status=409, body=json.dumps(body), headers=headers)
        else:
            route.continue_()

    page = demo_capture(demo_served, browser, operator, "**/sessions/*/*", calls)
    session_id = page.locator("#session-id").inner_text()
    page.wait_for_url(f"**/capture/demo/{session_id}", timeout=90_000)
    assert judged == [202]
    assert len(busy) == 1
    assert page.locator("#state").inner_text() == "done"
    assert page.locator("#verdict").inner_text().startswith("Live")
    page.context.close()
