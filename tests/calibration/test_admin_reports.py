"""Every report ``manage.py calibrate`` can produce, stored by the real command on dev images,
renders on the calibration's admin page and the tenant's page: formatted for people
(percentages with intervals, thresholds to 4 decimals, "-" for an empty interval), never the
raw JSON of the figures or the maps."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from calibration.models import Calibration
from tests.calibration.test_calibrate import calibrate, linked
from tests.conftest import DEV_DATA, subset_of_dev

pytestmark = pytest.mark.usefixtures("warm_engine")


def dev(pattern: str) -> list[Path]:
    return sorted(DEV_DATA.glob(pattern))


# name -> (live, spoof) images, or a manifest's sources; what the report then holds
CASES: dict[str, tuple[list[Path], list[Path]]] = {
    # full frames only: the face crops keep their shipped map ("no face crops")
    "frame-only": (dev("live/jomariya_*"), dev("spoof/jomariya_*")),
    # face crops of both classes, full frames live only: one-class kind, empty APCER cells
    "one-class-frames": (dev("live/wolf_*") + dev("live/minivision_1*"), dev("spoof/wolf_*")),
    # 1 live and 1 spoof face crop: calibrated, but too few for held-out figures
    "too-small": (dev("live/wolf_1*"), dev("spoof/wolf_7*")),
}


def pages(client: Client, stored: Calibration) -> tuple[str, str]:
    own = client.get(f"/admin/calibration/calibration/{stored.pk}/change/")
    tenant = client.get(f"/admin/accounts/tenant/{stored.tenant_id}/change/")
    assert own.status_code == 200 and tenant.status_code == 200
    return own.content.decode(), tenant.content.decode()


def assert_for_people(page: str) -> None:
    for raw in ("&quot;APCER&quot;", '"APCER":', "&quot;a&quot;", "{&#x27;a&#x27;"):
        assert raw not in page  # no JSON or dict dump of figures or params
    assert re.search(r"threshold \d\.\d{4}", page)


@pytest.mark.slow  # 2.5-2.9 s a case idle: calibrates and draws the plots
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_report_renders(
    case: str, make_tenant: Callable[..., Any], tmp_path: Path, admin_client: Client
) -> None:
    tenant, _ = make_tenant(case)
    live, spoof = CASES[case]
    calibrate(case, str(linked(tmp_path, live, spoof)))
    stored = Calibration.objects.get(tenant=tenant)
    own, tenant_page = pages(admin_client, stored)
    for page in (own, tenant_page):
        assert_for_people(page)
        assert "calibration-maps" in page and "calibration-figures" in page
    if case == "frame-only":
        assert "Face crops: no face crops in the sample; the shipped map is kept" in own
        assert re.search(r"<td>\d+\.\d% \[\d+\.\d%, \d+\.\d%\]</td>", own)
        assert "held out (leave-one-image-out)" in own
    elif case == "one-class-frames":
        assert "calibrating them needs at least 1 more spoof image of a full frame" in own
        row = re.search(r"<tr><th>held out, full frames</th>(.*?)</tr>", own)
        assert row is not None and "<td>-</td>" in row.group(1)  # no spoof frame: no APCER
        assert "shipped map kept" in own
    else:
        assert "No held-out figures: they need at least 2 live and 2 spoof images" in own
        assert "no held-out scores: the sample was too small" in own
        assert 'id="plot-det"' not in own


@pytest.mark.slow  # 4.1 s idle
def test_a_report_grouped_by_source_renders(
    make_tenant: Callable[..., Any], tmp_path: Path, admin_client: Client
) -> None:
    tenant, _ = make_tenant("grouped")
    sources = ("wolf_", "tricky_", "jomariya_", "minivision_")
    folder = subset_of_dev(tmp_path, lambda row: row["file"].split("/")[1].startswith(sources))
    calibrate("grouped", str(folder), "--target-apcer", "0.1")
    stored = Calibration.objects.get(tenant=tenant)
    own, tenant_page = pages(admin_client, stored)
    assert_for_people(own)
    assert "calibrated, held out (leave-one-source-out)" in own
    assert "intervals over sources" in own and "target APCER 10.00%" in tenant_page
    assert 'id="plot-det"' in own  # the held-out scores, plotted
    assert "Calibration #" in tenant_page and "leave-one-source-out" in tenant_page
