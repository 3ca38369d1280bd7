"""The console's read-only pages and display: evaluations with figures and in-memory plots,
calibrations, rounded numbers."""

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Tenant
from calibration.models import Evaluation
from guard.models import Refusal
from liveness.models import LivenessCheck
from ml.profiles import scoring_digest
from tests.accounts.test_admin import INLINE_MANAGEMENT, run_action
from tests.conftest import is_frame, stored_calibration, subset_of_dev
from tests.guard.test_bulk_delete import staff
from tests.pages import visible_text

pytestmark = pytest.mark.django_db
FIGS = {"APCER": [0.25, 0.05, 0.7], "BPCER": [0.0, 0.0, 0.49], "ACER": [0.125, 0.02, 0.6]}


def make_evaluation(**fields: Any) -> Evaluation:
    report = {
        "scores": {"bona_fide": [0.55, 0.7, 0.9, 0.95], "attack": [0.1, 0.3, 0.6, 0.8]},
        "intervals": {**FIGS, "AUC": [0.8125, 0.5, 1.0]},
        "by_source": {"phone": {**FIGS, "AUC": [0.9, 0.6, 1.0]}},
        "BPCER_at_APCER": {"5%": {"threshold": 0.80000001, "BPCER": 0.25}},
        "warnings": ["only 4 bona fide presentations pass the gates"],
    }
    return Evaluation.objects.create(
        profile="fast",
        threshold=0.5000000001,
        bona_fide=4,
        attacks=4,
        auc=0.8125000000001,
        report=report,
        scored_with=scoring_digest("fast"),  # today's models and maps: a tenant may use it
        **fields,
    )


def test_evaluation_page_is_read_only_with_figures_and_plots(admin_client: Any) -> None:
    evaluation = make_evaluation()
    url = f"/admin/calibration/evaluation/{evaluation.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 2  # DET and histogram
    assert "0.250 [0.050, 0.700]" in page and "phone" in page
    assert "0.5000<" in page and ">0.813<" in page and "0.8000<" in page
    assert "only 4 bona fide" in page
    assert 'name="_save"' not in page
    assert admin_client.post(url, {"threshold": "0.9"}).status_code == 403
    listing = admin_client.get("/admin/calibration/evaluation/").content.decode()
    assert "0.5000" in listing and "0.5000000001" not in listing


def test_an_evaluation_is_deleted_only_by_whoever_may_delete_evaluations() -> None:
    """Evaluations were read only for everyone, a superuser included (403 on the delete
    page): a report of a bank's customers' captures could never be deleted. A user with
    ``delete_evaluation`` deletes one from its page or from the list; a viewer still cannot,
    and nobody edits one."""
    kept, deleted, listed = make_evaluation(), make_evaluation(), make_evaluation()
    change = f"/admin/calibration/evaluation/{kept.pk}/change/"
    viewer = staff("calibration.view_evaluation")
    assert "deletelink" not in viewer.get(change).content.decode()
    delete = f"/admin/calibration/evaluation/{kept.pk}/delete/"
    assert viewer.get(delete).status_code == 403
    assert viewer.post(delete, {"post": "yes"}).status_code == 403
    deleter = staff("calibration.view_evaluation", "calibration.delete_evaluation")
    assert "deletelink" in deleter.get(change).content.decode()
    assert deleter.post(change, {"threshold": "0.9"}).status_code == 403  # still not edited
    assert "Evaluations: 1" in visible_text(deleter.get(delete).content.decode())
    gone = f"/admin/calibration/evaluation/{deleted.pk}/delete/"
    assert deleter.post(gone, {"post": "yes"}).status_code == 302
    data = {"action": "delete_selected", "_selected_action": [str(listed.pk)], "post": "yes"}
    assert deleter.post("/admin/calibration/evaluation/", data).status_code == 302
    assert list(Evaluation.objects.values_list("pk", flat=True)) == [kept.pk]
    entry = LogEntry.objects.get(object_id=str(deleted.pk), action_flag=DELETION)
    assert entry.object_repr.startswith(f"evaluation #{deleted.pk} (fast, ")


ONE_CLASS_SOURCE = "viguardieiro/cnn_liveness"  # bona fide presentations only
# Each set leaves part of the page with an empty class: a figure with nothing to count is
# NaN, stored as null, shown as a dash with the reason; a figure of too few sources has no
# interval, and the page says so.
EMPTY_INTERVALS = {
    "one-class source": (
        lambda row: row["source_repo"] in (ONE_CLASS_SOURCE, "WOLF-huo/face_liveness"),
        f'<tr data-source="{ONE_CLASS_SOURCE}"><th>* {ONE_CLASS_SOURCE}</th><td>6</td><td>0</td>'
        "<td>-</td>",
    ),
    "crop-only": (
        lambda row: not is_frame(row) and "WOLF" in row["source_repo"],
        "<h3>frame: 0 bona fide (0 sources), 0 attacks (0 sources)</h3>",
    ),
    "frame-only": (is_frame, "<h3>crop: 0 bona fide (0 sources), 0 attacks (0 sources)</h3>"),
}


@pytest.mark.slow  # 5-6 s a case at load 8: draws the plots
@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("kind", sorted(EMPTY_INTERVALS))
def test_evaluation_page_shows_every_shape_of_report(
    admin_client: Any, tmp_path: Path, kind: str
) -> None:
    keep, empty_part = EMPTY_INTERVALS[kind]
    folder = subset_of_dev(tmp_path, keep)
    call_command("evaluate", str(folder), stdout=StringIO(), stderr=StringIO())
    evaluation = Evaluation.objects.get()
    response = admin_client.get(f"/admin/calibration/evaluation/{evaluation.pk}/change/")
    assert response.status_code == 200
    page = re.sub(r'src="data:image/png;base64,[^"]*"', "", response.content.decode())
    page = re.sub(r">\s+<", "><", page)  # the template's indentation
    assert empty_part in page
    # two sources at most: every figure without an interval, each saying why
    assert re.search(r'<td class="interval">no interval: [12] sources? \(needs 5\)</td>', page)
    assert not re.search(r'<td class="interval">\[', page)
    assert "needs bona fide and attack presentations" in page or kind == "one-class source"
    assert not re.search(r"\d\.\d{5,}", page) and "{&quot;" not in page and '{"' not in page
    assert response.content.decode().count('src="data:image/png;base64,iVBORw0KGgo') == 2


def test_calibration_page_is_read_only(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Cal")
    # stored before maps per capture kind and held-out figures: one map, in-sample "after"
    calibration = stored_calibration(
        tenant,
        profile="fast",
        params={"a": 1.2, "b": 0.1},
        threshold=0.612345678,
        figures={
            "after": {**FIGS, "AUC": [0.9, 0.7, 1.0]},
            "cross_validated": {**FIGS, "AUC": [0.8, 0.6, 1.0]},
        },
    )
    url = f"/admin/calibration/calibration/{calibration.pk}/change/"
    page = admin_client.get(url).content.decode()
    # the k-fold row, as percentages; the in-sample "after" row is not shown as a result
    assert "25.0% [5.0%, 70.0%]" in page and "0.800 [0.600, 1.000]" in page
    assert "0.900 [0.700, 1.000]" not in page and "k-fold over images (held out)" in page
    assert page.count("<td>1.2000</td>") == 2  # the one map, shown for both kinds
    assert 'name="_save"' not in page and "deletelink" not in page
    assert admin_client.post(url, {}).status_code == 403
    assert (
        admin_client.post(f"/admin/calibration/calibration/{calibration.pk}/delete/").status_code
        == 403
    )
    listing = admin_client.get("/admin/calibration/calibration/").content.decode()
    assert "0.6123" in listing and "0.612345678" not in listing
    assert "stored before calibrations kept held-out scores" in page  # no scores, no plots


def test_a_calibrated_tenant_can_still_be_deleted(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Gone")
    stored_calibration(tenant, profile="fast")
    admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/delete/", {"post": "yes"})
    assert not Tenant.objects.filter(pk=tenant.pk).exists()


def test_index_overview_numbers(admin_client: Any, client: Any) -> None:
    full = Tenant.objects.create(name="Full", request_limit=10, requests_used=10)
    Tenant.objects.create(name="Nearly", request_limit=100, requests_used=95)
    Tenant.objects.create(name="Roomy", request_limit=100, requests_used=10)
    Tenant.objects.create(name="Endless")
    for outcome in (
        {"is_live": True},
        {"is_live": True},
        {"is_live": False},
        {"refused_code": "no_face"},
    ):
        LivenessCheck.objects.create(tenant=full, latency_ms=1.0, **outcome)
    old = LivenessCheck.objects.create(tenant=full, latency_ms=1.0, is_live=True)
    LivenessCheck.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    today = timezone.now().date()
    Refusal.objects.create(
        day=today, code="invalid_credentials", status=401, client="203.0.113.0/24", hits=3
    )
    Refusal.objects.create(day=today, code="limit_reached", status=429, tenant_id=full.pk, hits=4)
    page = admin_client.get("/admin/").content.decode()
    assert "<strong>2</strong> live, <strong>1</strong> spoof" in page
    assert '<strong id="overview-401">3</strong>' in page
    assert '<strong id="overview-429">4</strong>' in page
    assert "<code>203.0.113.0/24</code> (3)" in page
    near = page.split('id="overview-near-limit"')[1].split("</td>")[0]
    assert "Full" in near and "Nearly" in near and "Roomy" not in near and "Endless" not in near
    assert near.index("Full") < near.index("Nearly")
    assert "View site" not in page


def test_tenant_list_highlights_and_rounds(admin_client: Any) -> None:
    Tenant.objects.create(name="Full", request_limit=10, requests_used=10, threshold=0.1234567)
    Tenant.objects.create(name="Nearly", request_limit=100, requests_used=91)
    Tenant.objects.create(name="Roomy", request_limit=100, requests_used=10)
    page = admin_client.get("/admin/accounts/tenant/").content.decode()
    assert 'class="quota-exhausted"' in page and 'class="quota-near"' in page
    assert 'class="quota-ok"' in page
    assert "0.123<" in page and "0.1234567" not in visible_text(page)
    assert 'title="0.1234567"' in page  # the exact value, for whoever needs it
    assert "10 / 10" in page


def test_new_hash_id_has_a_copy_button(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Copied")
    page = run_action(admin_client, "tenant", "issue_hash_id", tenant.pk).content.decode()
    assert 'data-copy="new-hash-id-' in page and 'src="/static/accounts/copy.js"' in page
    script = admin_client.get("/static/accounts/copy.js")
    assert "navigator.clipboard" in b"".join(script.streaming_content).decode()


def test_a_fitted_threshold_is_shown_rounded_and_kept(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Fitted", threshold=0.6123456789012345)
    url = f"/admin/accounts/tenant/{tenant.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'value="0.6123"' in page and "0.61234567" not in visible_text(page)
    assert 'title="Stored: 0.6123456789012345"' in page  # the exact value, as a tooltip
    data = {"name": "Fitted", "is_active": "on", "threshold": "0.6123", "profile": "fast"}
    data |= {"crop_policy": "judge", "challenge": "none", "request_limit": "5", **INLINE_MANAGEMENT}
    data |= {"challenge_band": "0.75"}
    admin_client.post(url, data)
    tenant.refresh_from_db()
    assert (tenant.threshold, tenant.request_limit) == (0.6123456789012345, 5)
    admin_client.post(url, {**data, "threshold": "0.7"})
    tenant.refresh_from_db()
    assert tenant.threshold == 0.7


def test_the_moved_pages_old_addresses_lead_to_them(admin_client: Any) -> None:
    calibration = stored_calibration(
        Tenant.objects.create(name="Moved"),
        created_by="t",
        profile="fast",
        threshold=0.5,
        bona_fide=4,
        attacks=4,
    )
    old = admin_client.get(f"/admin/accounts/calibration/{calibration.pk}/change/")
    assert old.status_code == 301
    assert old["Location"] == f"/admin/calibration/calibration/{calibration.pk}/change/"
    assert admin_client.get(old["Location"]).status_code == 200
    listing = admin_client.get("/admin/liveness/evaluation/?profile=fast")
    assert listing["Location"] == "/admin/calibration/evaluation/?profile=fast"


NEW_KEYS = ("remarks", "exact", "bound", "in_sample", "unsourced", "in_sample_of", "within")


def older(value: Any) -> Any:
    """A report as evaluate stored it before lower bounds, exact bounds, remarks and in-sample
    marks: the same report without those keys."""
    if isinstance(value, dict):
        scope = "kind" in value  # a scope's count of sources is new; a fitted one's is not
        dropped = (*NEW_KEYS, "exact_bound", *(("sources",) if scope else ()))
        return {k: older(v) for k, v in value.items() if k not in dropped}
    if isinstance(value, list):
        return [older(v) for v in value]
    return value


def test_evaluation_page_shows_bounds_and_remarks_and_renders_older_reports(
    admin_client: Any,
) -> None:
    from calibration.management.commands.evaluate import store
    from ml.evaluate import Report
    from ml.profiles import fitting_sources
    from tests.ml.test_pad_metrics import sample

    seen = sorted(fitting_sources())[0]
    samples = [
        sample(label, p, source)
        for source in (seen, "b", "c", "d", "e")
        for label, p in (("live", 0.8), ("spoof", 0.1), ("spoof", 0.6))
    ]
    for s in samples:
        s.species = "unknown" if s.label == "spoof" else s.species
    evaluation = store(Report(0.5, "fast", "five", samples, resamples=200))
    page = visible_text(
        admin_client.get(f"/admin/calibration/evaluation/{evaluation.pk}/change/").content.decode()
    )
    assert "[0.0 %, 45.1 %] exact bound" in page  # BPCER: no source rejects a face
    assert "≥ 50.0 %" in page and "10 of 10 attacks name no PAI species" in page
    assert "BPCER20 is BPCER at APCER 0 %" in page
    assert f"* {seen}" in page and "In-sample for the shipped maps: 1 of 5" in page
    evaluation.report = older(evaluation.report)
    evaluation.save()
    response = admin_client.get(f"/admin/calibration/evaluation/{evaluation.pk}/change/")
    old = visible_text(response.content.decode())
    assert response.status_code == 200 and "APCER, worst PAI species" in old
    assert "exact bound" not in old and "≥" not in old and "name no PAI species" not in old
