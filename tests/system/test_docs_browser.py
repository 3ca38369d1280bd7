"""Swagger UI and Redoc in Debian's chromium: they render the schema and make no request to
any host but the service (fonts, scripts, validator badges all count), and their
Content-Security-Policy refuses nothing they need: only Redoc's logo from cdn.redoc.ly."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser import chromium as launch_chromium
from tests.browser import take_violations, wait_for_reports
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as launched:
        yield launched


def requests_made(chromium: Any, url: str, rendered: str) -> tuple[list[str], list[str]]:
    """(URLs the page sent to the service, URLs it tried elsewhere and how each ended).

    An outside URL the page's Content-Security-Policy blocked ends as "csp" and never
    reaches the network; anything else outside is aborted here, and ends otherwise."""
    page = chromium.new_page()
    sent: list[str] = []
    outside: dict[str, str] = {}
    local = urlsplit(url).netloc

    def seen(request: Any) -> None:
        if urlsplit(request.url).netloc == local:
            sent.append(request.url)
        elif not request.url.startswith(("data:", "blob:")):
            outside[request.url] = "pending"

    def failed(request: Any) -> None:
        if request.url in outside:
            outside[request.url] = request.failure

    def route(routed: Any) -> None:
        if urlsplit(routed.request.url).netloc == local:
            routed.continue_()
        else:
            routed.abort()

    page.on("request", seen)
    page.on("requestfailed", failed)
    page.route("**/*", route)
    try:
        page.goto(url, wait_until="networkidle")
        page.get_by_text(rendered).first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        wait_for_reports(page, sum(how == "csp" for how in outside.values()))
    finally:
        page.close()
    return sent, [f"{u} ({how})" for u, how in outside.items()]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_render_with_local_requests_only(
    served: Served, chromium: Any, path: str
) -> None:
    sent, outside = requests_made(chromium, served.base + path, "/status_check")
    assert any("/api/schema/" in u for u in sent), sent
    # Redoc's bundle always renders its logo from cdn.redoc.ly; the page's CSP stops it.
    assert all(how.endswith("(csp)") for how in outside), outside
    refused = take_violations()
    assert all(v.startswith("img-src refused https://cdn.redoc.ly/") for v in refused), refused
    assert len(refused) == len(outside)
