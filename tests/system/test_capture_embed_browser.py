"""The capture component as docs/integrator/sessions.md tells an integrator to embed it: the
page's snippet, run as written (the service's placeholder address replaced by a real server's)
on a page of another origin, in Debian's chromium with a fake camera, through to the session's
verdict. A snippet importing "/static/liveness/capture.js" with no `baseUrl` would fail: on the
integrator's own origin the module is a 404 there, and with the service's address alone the
token calls go to the page's origin (501 from its server, the component's `network` error).
"""

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import chromium
from tests.conftest import LIVE_JPG, REPO
from tests.servers.entrypoint import Served, entrypoint_server
from tests.system.test_capture_browser import FPS, letterboxed, write_y4m

pytestmark = pytest.mark.system

SESSIONS_MD = REPO / "docs" / "integrator" / "sessions.md"
PLACEHOLDER = "https://liveness.example.com"  # the service's address in the snippet
# The component's end states (capture.js sets data-phase on its root element).
ENDED = ".lc-root[data-phase=done], .lc-root[data-phase=error]"


def framed_origin(origin: str) -> str:
    """The page server under another name: another origin, as a site framing the page is."""
    return origin.replace("127.0.0.1", "localhost")


def doc_snippet() -> str:
    """The page's one ```html block: the component as an integrator embeds it."""
    blocks: list[str] = re.findall(
        r"```html\n(.*?)```", SESSIONS_MD.read_text(encoding="utf-8"), re.S
    )
    assert len(blocks) == 1, "sessions.md should show one HTML snippet"
    return blocks[0]


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The integrator's web app: a static server on its own origin, and its folder."""
    folder = tmp_path_factory.mktemp("integrator-site")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, page_server: tuple[str, Path]
) -> Iterator[Served]:
    """The service, allowing the integrator's origin as the page tells the operator to."""
    origin, _ = page_server
    work = tmp_path_factory.mktemp("embed-server")
    allowed = f"{origin},{framed_origin(origin)}"
    with entrypoint_server(work, CAPTURE_ALLOWED_ORIGINS=allowed, LOG_LEVEL="INFO") as server:
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    camera = tmp_path_factory.mktemp("embed-camera") / "camera.y4m"
    write_y4m(camera, [(letterboxed(LIVE_JPG), 30 * FPS)])
    fake = f"--use-file-for-fake-video-capture={camera}"
    with chromium("--use-fake-device-for-media-stream", fake) as launched:
        yield launched


def test_the_documented_snippet_works_from_the_integrators_origin(
    service: Served, page_server: tuple[str, Path], browser: Any
) -> None:
    origin, folder = page_server
    _, hash_id = service.new_tenant(10)
    opened = requests.post(f"{service.base}/sessions", json={"hash_id": hash_id}, timeout=30)
    assert opened.status_code == 201, opened.text
    session = opened.json()
    snippet = doc_snippet()
    # The backend hands the page its session (the snippet's `sessionId, token`).
    handed = (
        f'<script>var sessionId = "{session["session_id"]}", token = "{session["token"]}";'
        "</script>\n"
    )
    (folder / "capture.html").write_text(handed + snippet.replace(PLACEHOLDER, service.base))

    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    refused: list[str] = []
    page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else 0)
    page.on("requestfailed", lambda r: refused.append(f"failed {r.url}"))
    try:
        page.goto(f"{origin}/capture.html")
        try:
            page.wait_for_selector(ENDED, state="attached", timeout=60_000)
        except Exception as error:  # playwright's TimeoutError: say what the page met
            pytest.fail(f"the component never ended ({error}); answers refused: {refused}")
        phase = page.get_attribute(".lc-root", "data-phase")
        message = page.get_attribute(".lc-root", "data-message")
    finally:
        context.close()
    assert (phase, refused) == ("done", []), message
    read = requests.get(
        f"{service.base}/sessions/{session['session_id']}",
        headers={"X-Hash-Id": hash_id},
        timeout=30,
    ).json()
    assert read["state"] == "done" and read["frames"] == 3, read
    assert read["liveness_result"]["is_live"] in (0, 1)


def snippet_page(service: Served, folder: Path, name: str, hash_id: str) -> str:
    """The snippet on a page of the integrator's site, on a new session; its session id."""
    opened = requests.post(f"{service.base}/sessions", json={"hash_id": hash_id}, timeout=30)
    assert opened.status_code == 201, opened.text
    session = opened.json()
    handed = (
        f'<script>var sessionId = "{session["session_id"]}", token = "{session["token"]}";'
        "</script>\n"
    )
    (folder / name).write_text(handed + doc_snippet().replace(PLACEHOLDER, service.base))
    return str(session["session_id"])


@pytest.mark.parametrize("allow", ["", "camera"])
def test_a_frame_not_allowed_the_camera_says_so(
    service: Served, page_server: tuple[str, Path], browser: Any, allow: str
) -> None:
    """The snippet's page framed by another site: without allow="camera" getUserMedia failed with
    the NotAllowedError of a refusal and the person was told to allow the camera, which only the
    embedding site can. It says the page cannot use the camera here (`camera_blocked`, no Try
    again); with allow="camera" the capture runs through as on its own."""
    origin, folder = page_server
    _, hash_id = service.new_tenant(10)
    snippet_page(service, folder, f"framed-{allow}.html", hash_id)
    inner = f"{framed_origin(origin)}/framed-{allow}.html"
    (folder / f"embedding-{allow}.html").write_text(
        f'<iframe src="{inner}" allow="{allow}" width="640" height="700"></iframe>'
    )
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    try:
        page.goto(f"{origin}/embedding-{allow}.html")
        frame = page.frame_locator("iframe")
        frame.locator(ENDED).wait_for(state="attached", timeout=60_000)
        root = frame.locator(".lc-root")
        phase, message = root.get_attribute("data-phase"), root.get_attribute("data-message")
        status = frame.locator(".lc-status").inner_text()
        retry_shown = frame.locator(".lc-retry").is_visible()
    finally:
        context.close()
    if allow:
        assert (phase, message) == ("done", "done")
        return
    assert (phase, message) == ("error", "camera_blocked")
    # The snippet's lang is "fr".
    assert (
        status.startswith("La caméra ne peut pas être utilisée ici") and "nouvel onglet" in status
    )
    assert not retry_shown  # trying again in the frame cannot help
