"""The admin's evaluation page in Debian's chromium (Playwright) against the real server, for
reports of every shape the real `evaluate` produces: the whole dev set (intervals over its
sources), a crop-only set with a bona fide-only source (an empty frame scope, a one-class
source), a frame-only set whose manifest names no source (no interval at all). Each page must
read as tables for people: rates as percentages, an interval or the reason there is none, no
JSON, no float of more than 4 decimals, nothing wider than the window. Screenshots are written
to pytest's temporary directory (the path is printed)."""

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import PASSWORD, chromium
from tests.conftest import DEV_DATA, is_frame, subset_of_dev
from tests.servers.entrypoint import Served, entrypoint_server

pytestmark = pytest.mark.system

LATEST = "from calibration.models import Evaluation as E; print(E.objects.latest('pk').pk)"
WIDTH = 1280
# "≥ 29.4 %": a lower bound (attacks without a PAI species)
VALUE = re.compile(r"-|(≥ )?\d{1,3}\.\d %|[01]\.\d{3}")
INTERVAL = re.compile(
    r"(\[\d{1,3}\.\d %, \d{1,3}\.\d %\]|\[[01]\.\d{3}, [01]\.\d{3}\])( exact bound)?"
    r"|no interval: \d+ sources? \(needs 5\)|no interval: the manifest names no sources"
    r"|no interval: most resamples do not count it"
    r"|no (\w+ )?(bona fide|attack) presentations|needs bona fide and attack presentations"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with entrypoint_server(tmp_path_factory.mktemp("evaluation-server")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def without_sources(folder: Path) -> Path:
    """``folder``'s manifest without its source column: a set whose sources are unknown."""
    manifest = folder / "manifest.csv"
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    fields = [f for f in rows[0] if f != "source_repo"]
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def shapes(tmp_path: Path) -> dict[str, Path]:
    def crops_and_one_class(row: dict[str, str]) -> bool:
        return not is_frame(row) and row["source_repo"].startswith(("WOLF", "viguardieiro"))

    return {
        "dev": DEV_DATA,
        "crop-only": subset_of_dev(tmp_path / "crops", crops_and_one_class),
        "frame-only": without_sources(subset_of_dev(tmp_path / "frames", is_frame)),
    }


def log_in(served: Served, browser: Any) -> Any:
    user = f"ev{os.getpid()}"
    served.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    served.manage("createsuperuser", "--noinput", "--username", user, "--email", "e@example.com")
    page = browser.new_context(viewport={"width": WIDTH, "height": 900}).new_page()
    page.set_default_timeout(60_000)  # each wait ends on its event; a guard for a loaded machine
    page.goto(f"{served.base}/admin/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return page


def cells(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


# Each plot's accessible name, as a screen reader reads it (calibration.pages.plot_figures).
PLOT_NAMES = {
    "det": r"DET curve of \d+ bona fide and \d+ attack presentations(, not drawn: [^.]+)?\. "
    r"EER \d+\.\d %; BPCER \d+\.\d % at APCER 1 %, \d+\.\d % at APCER 5 %, "
    r"\d+\.\d % at APCER 10 %\.",
    "histogram": r"Histograms of the scores \(P\(bona fide\)\) of \d+ bona fide and \d+ "
    r"attack presentations in 20 bands of 0\.05, threshold 0\.\d{4}: at or above it .+\.",
}


TABLE_NAMES = {"det": "The DET curve in figures", "histogram": "Presentations per score band"}


def assert_plots_read_out(page: Any, shape: str) -> None:
    """Each plot's figures reach the accessibility tree: its name (the alt) and, once its
    disclosure is opened, its table (4 figures of the DET curve, 20 score bands)."""
    for plot, named in PLOT_NAMES.items():
        image = page.get_by_role("img", name=re.compile(f"^{named}$"))
        assert image.count() == 1, (shape, plot, page.get_attribute(f"#plot-{plot}", "alt"))
        table = page.get_by_role("table", name=re.compile(f"^{TABLE_NAMES[plot]}"))
        assert table.count() == 0, (shape, plot)  # closed until asked for
        page.locator(f"#plot-{plot} ~ details summary").click()
        assert table.get_by_role("row").count() == {"det": 5, "histogram": 21}[plot], shape


def test_evaluation_page_of_every_report_shape(
    served: Served, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("evaluation-sets")
    for name in ("crops", "frames"):
        (work / name).mkdir()
    shots = tmp_path_factory.mktemp("evaluation-screenshots")
    page = log_in(served, browser)
    for shape, folder in shapes(work).items():
        served.manage("evaluate", str(folder))
        evaluation = served.manage("shell", "-c", LATEST).split()[-1]
        page.goto(f"{served.base}/admin/calibration/evaluation/{evaluation}/change/")
        page.wait_for_selector("#iso-report")
        text = page.locator("#content").inner_text()
        assert not re.search(r"\d\.\d{5,}", text), shape  # no float beyond 4 decimals
        assert "{" not in text and '":' not in text, shape  # no JSON
        values = cells(page, ".iso-figures td.value") + cells(page, ".iso-sources td")
        values = [v for v in values if not re.fullmatch(r"\d+", v)]  # the counts
        assert values and all(VALUE.fullmatch(v) for v in values), (shape, values)
        intervals = cells(page, ".iso-figures td.interval") + cells(page, ".iso-fitted small")
        assert all(INTERVAL.fullmatch(i) for i in intervals), (shape, intervals)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= WIDTH, shape
        assert_plots_read_out(page, shape)
        shot = shots / f"evaluation-{shape}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        if shape == "dev":  # intervals over its 8 sources where 5 or more count a figure
            assert any(i.startswith("[") for i in intervals)
            assert page.locator(".iso-sources tbody tr").count() == 8
        elif shape == "crop-only":
            frame = page.locator("#iso-frame h3").inner_text()
            assert frame == "frame: 0 bona fide (0 sources), 0 attacks (0 sources)"
            one_class = page.locator('tr[data-source="viguardieiro/cnn_liveness"] td')
            assert one_class.all_inner_texts()[:3] == ["6", "0", "-"]
        else:
            assert "No intervals: the manifest names no sources" in text  # a sentence
            assert page.locator("#iso-sources").count() == 0
            assert "None: not validated: the manifest names no sources." in text
