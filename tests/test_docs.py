"""The documentation site builds with `mkdocs build --strict` (mkdocs.yml: every page in the
nav, every link and anchor between pages resolves), offline: no page asks another host for a
font, a script or a style sheet, in its HTML or in Debian's chromium."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium as launch_chromium
from tests.conftest import REPO

EXTERNAL_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `make docs` builds it, strictly, into a temp dir."""
    site = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "WARNING" not in done.stderr + done.stdout, done.stderr + done.stdout
    return site


def test_docs_build_strictly_with_local_assets_only(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert (site / "index.html") in pages and (site / "integrator/api.html") in pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not EXTERNAL_ASSET.findall(html), (page, EXTERNAL_ASSET.findall(html))
        assert "fonts.googleapis.com" not in html, page


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
