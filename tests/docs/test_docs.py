"""The documentation site builds with `mkdocs build --strict` (mkdocs.yml: every page in the
nav, every link and anchor between pages resolves), offline: no page asks another host for a
font, a script or a style sheet in its HTML (in Debian's chromium: tests/system/test_docs.py)."""

import re
from pathlib import Path

EXTERNAL_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")


def test_docs_build_strictly_with_local_assets_only(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert (site / "index.html") in pages and (site / "integrator/api.html") in pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not EXTERNAL_ASSET.findall(html), (page, EXTERNAL_ASSET.findall(html))
        assert "fonts.googleapis.com" not in html, page
