"""The documentation site, built as `make docs` builds it (tests/docs/test_docs.py), opens from
disk in Debian's chromium with no request to another host."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium as launch_chromium

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as launched:
        yield launched


def test_docs_pages_open_from_disk_with_no_request_elsewhere(site: Path, chromium: Any) -> None:
    outside: list[str] = []

    def route(routed: Any) -> None:
        if routed.request.url.startswith(("file:", "data:", "blob:")):
            routed.continue_()
        else:
            outside.append(routed.request.url)
            routed.abort()

    page = chromium.new_page()
    page.route("**/*", route)
    try:
        for html in sorted(site.rglob("*.html")):
            page.goto(html.as_uri(), wait_until="load")
            title = page.locator("h1").first.inner_text(timeout=60_000)
            assert title, html
    finally:
        page.close()
    assert outside == [], outside
