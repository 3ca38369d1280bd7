"""The documentation site builds with `mkdocs build --strict` (mkdocs.yml: every page in the
nav, every link and anchor between pages resolves), offline: no page asks another host for a
font, a script or a style sheet."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

EXTERNAL_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")


def test_docs_build_strictly_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
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
    pages = sorted(site.rglob("*.html"))
    assert (site / "index.html") in pages and (site / "integrator/api.html") in pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not EXTERNAL_ASSET.findall(html), (page, EXTERNAL_ASSET.findall(html))
        assert "fonts.googleapis.com" not in html, page
