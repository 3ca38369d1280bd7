"""Per-tenant calibration: ``manage.py calibrate``, the admin's zip upload, what /liveness
answers afterwards, and the revert. Dev images are linked into temp folders, never copied."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from accounts.models import Tenant
from calibration.jobs import run_local_jobs
from calibration.models import Calibration
from liveness.runtime import get_engine
from ml import calibration
from tests.accounts.test_admin import run_action
from tests.conftest import DEV_DATA, Post, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")

# The two full-frame sources and the first images of three face-crop sources.
LIVE = sorted(DEV_DATA.glob("live/jomariya_*")) + sorted(DEV_DATA.glob("live/wolf_*"))[:4]
SPOOF = sorted(DEV_DATA.glob("spoof/jomariya_*")) + sorted(DEV_DATA.glob("spoof/wolf_*"))[:4]


def linked(tmp: Path, live: list[Path], spoof: list[Path]) -> Path:
    for label, paths in (("live", live), ("spoof", spoof)):
        (tmp / label).mkdir(parents=True)
        for path in paths:
            (tmp / label / path.name).symlink_to(path)
    return tmp


def calibrate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("calibrate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fused_logit(path: Path, tenant: Tenant) -> float:
    engine = get_engine()
    return engine.inspect(engine.decode(path.read_bytes()), tenant.crop_policy).logit(
        tenant.profile
    )


@pytest.mark.slow  # 6.5 s at load 8
def test_refuses_below_four_images_of_a_class(
    make_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    tenant, _ = make_tenant("few")
    folder = linked(tmp_path, LIVE[:3], SPOOF)
    with pytest.raises(CommandError, match=r"3 live and \d+ spoof \(at least 4 of each"):
        calibrate("few", str(folder))
    tenant.refresh_from_db()
    assert tenant.calibration is None and not Calibration.objects.exists()


@pytest.mark.slow  # 10 s at load 8
def test_calibrate_at_target_apcer_then_revert_through_http(
    make_tenant: Callable[..., Any], tmp_path: Path, post_liveness: Post, admin_client: Any
) -> None:
    tenant, secret = make_tenant("channel", request_limit=100)
    out, err = calibrate("channel", str(linked(tmp_path, LIVE, SPOOF)), "--target-apcer", "0.1")
    assert "fewer than 30" in err  # warns on a small sample
    for words in ("before, on the sample", "after, on the sample", "-fold cross-validated"):
        assert words in out
    assert "AUC" in out and "[" in out  # intervals printed
    tenant.refresh_from_db()
    stored = Calibration.objects.get(tenant=tenant)
    assert tenant.calibration == {"id": stored.pk, **stored.params, "profile": "fast"}
    assert tenant.threshold == stored.threshold and stored.previous_threshold == 0.5
    assert stored.created_by and stored.origin == "command"
    assert stored.figures["after"]["APCER"][0] <= 0.1  # the target is met on the sample
    assert stored.params["a"] > 0
    assert tenant.requests_used == 0  # calibration uses no quota
    kept = stored.figures["scores"]  # the sample's calibrated scores, for the page's plots
    assert (len(kept["live"]), len(kept["spoof"])) == (stored.bona_fide, stored.attacks)
    assert all(0.0 <= p <= 1.0 for p in kept["live"] + kept["spoof"])
    page = admin_client.get(f"/admin/calibration/calibration/{stored.pk}/change/").content.decode()
    assert 'id="plot-det"' in page and 'id="plot-histogram"' in page

    # /liveness now answers the calibrated P(live), monotone in the fused logit
    platt = calibration.Platt(**stored.params)
    answered = []
    for path in (*LIVE[:3], *SPOOF[:3]):
        response = post_liveness({"hash_id": secret, "selfie_image": data_uri(path)})
        assert response.status_code == 201
        result = response.json()["liveness_result"]
        z = fused_logit(path, tenant)
        assert result["liveness_score"] == pytest.approx(platt.p(z), abs=1e-6)
        assert result["is_live"] == int(result["liveness_score"] >= tenant.threshold)
        answered.append((z, result["liveness_score"]))
    answered.sort()
    assert all(b[1] >= a[1] for a, b in zip(answered, answered[1:], strict=False))
    tenant.refresh_from_db()
    assert tenant.requests_used == 6

    # revert (admin action): uncalibrated scores and the earlier threshold again
    response = run_action(admin_client, "tenant", "revert_to_uncalibrated", tenant.pk)
    assert "uncalibrated, threshold 0.5000" in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.calibration, tenant.threshold) == (None, 0.5)
    assert Calibration.objects.get(pk=stored.pk).reverted_at is not None
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE[0])})
    z = fused_logit(LIVE[0], tenant)
    expected = 1 / (1 + math.exp(-z))
    assert response.json()["liveness_result"]["liveness_score"] == pytest.approx(expected, 1e-6)


def test_equal_error_threshold_without_a_target(
    make_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    tenant, _ = make_tenant("eer", threshold=0.7)
    calibrate("eer", str(linked(tmp_path, LIVE, SPOOF)))
    stored = Calibration.objects.get(tenant=tenant)
    after = stored.figures["after"]
    # on a small sample APCER and BPCER cannot always be equal: closest of all thresholds
    assert abs(after["APCER"][0] - after["BPCER"][0]) <= 1 / min(len(LIVE), len(SPOOF)) + 1e-9
    assert stored.previous_threshold == 0.7


def make_zip(live: list[Path], spoof: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, paths in (("live", live), ("spoof", spoof)):
            for path in paths:
                archive.writestr(f"captures/{label}/{path.name}", path.read_bytes())
        archive.writestr("captures/README.txt", "ignored")
    return buffer.getvalue()


@pytest.mark.slow  # 8 s at load 8
def test_admin_zip_upload_in_memory(
    make_tenant: Callable[..., Any], admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    tenant, _ = make_tenant("uploaded")
    spooled: list[Any] = []
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda *a, **k: spooled.append(a))
    upload = io.BytesIO(make_zip(LIVE, SPOOF))
    upload.name = "captures.zip"
    url = f"/admin/accounts/tenant/{tenant.pk}/calibrate/"
    response = admin_client.post(url, {"archive": upload, "target_apcer": "10"}, follow=True)
    assert f"queued ({len(LIVE) + len(SPOOF)} images)" in response.content.decode()
    assert (
        run_local_jobs() == 1
    )  # the task worker's job (tests/calibration/test_calibration_jobs.py)
    page = admin_client.get(url).content.decode()
    stored = Calibration.objects.get(tenant=tenant)
    assert f"Calibration #{stored.pk} stored" in page
    assert 'id="calibration-status"' in page and "calibration-figures" in page
    assert stored.origin == "admin upload" and stored.created_by == "admin"
    assert stored.bona_fide + stored.attacks + stored.refused == len(LIVE) + len(SPOOF)
    assert spooled == []  # nothing went to a temporary file

    few = io.BytesIO(make_zip(LIVE[:2], SPOOF))
    few.name = "few.zip"
    admin_client.post(url, {"archive": few})
    assert run_local_jobs() == 1
    assert "at least 4 of each" in admin_client.get(url).content.decode()
    broken = io.BytesIO(b"not a zip")
    broken.name = "x.zip"
    assert "not a zip file" in admin_client.post(url, {"archive": broken}).content.decode()


def test_upload_over_the_limit_is_dropped(
    make_tenant: Callable[..., Any], admin_client: Any, settings: Any
) -> None:
    settings.UPLOAD_MAX_BYTES = 1000
    tenant, _ = make_tenant("huge")
    upload = io.BytesIO(make_zip(LIVE, SPOOF))
    upload.name = "big.zip"
    url = f"/admin/accounts/tenant/{tenant.pk}/calibrate/"
    response = admin_client.post(url, {"archive": upload})
    assert "larger than the upload limit" in response.content.decode()
    assert not Calibration.objects.exists()


def test_fit_is_monotone_and_shrinks_small_samples() -> None:
    rng = np.random.default_rng(3)
    live, spoof = rng.normal(4.0, 1.0, 200), rng.normal(2.0, 1.0, 200)
    big = calibration.fit(live, spoof)
    small = calibration.fit(live[:4], spoof[:4])
    assert big.a > 0 and small.a > 0
    assert abs(small.b) < abs(big.b)  # the prior pulls a small sample toward identity
    z = np.linspace(-8, 8, 101)
    assert np.all(np.diff(big(z)) > 0)
    inverted = calibration.fit(spoof, live)  # live scored lower: the slope stays positive
    assert inverted.a == calibration.MIN_SLOPE
    assert np.all(np.diff(inverted(z)) > 0)


def test_intervals() -> None:
    low, high = calibration.wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    low, high = calibration.wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    low, high = calibration.auc_interval(0.9, 30, 30)
    assert low < 0.9 < high and high - low == pytest.approx(2 * 1.96 * 0.0394, abs=0.01)
    cv = calibration.cross_validate(np.arange(10.0), -np.arange(10.0), None)
    assert cv["folds"] == 5 and cv["APCER"][0] <= 0.2 and cv["BPCER"][0] <= 0.2


def test_zip_bomb_is_refused() -> None:
    from calibration.calibrate import CalibrationError, zip_images

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("live/big.png", b"\0" * (2 << 20))  # 2 MB of zeros, a few kB zipped
    with pytest.raises(CalibrationError, match="too large once inflated"):
        list(zip_images(buffer.getvalue(), max_image_bytes=1 << 20))


def test_target_apcer_from_an_evaluation_is_refused_once_calibrated(
    make_tenant: Callable[..., Any], tmp_path: Path, admin_client: Any
) -> None:
    from tests.calibration.test_evaluate import change_tenant, make_evaluation

    make_evaluation("fast")
    tenant, _ = make_tenant("calibrated")
    calibrate("calibrated", str(linked(tmp_path, LIVE, SPOOF)))
    tenant.refresh_from_db()
    threshold = tenant.threshold
    response = change_tenant(admin_client, tenant, target_apcer="5")
    assert "This tenant is calibrated" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.threshold == threshold
