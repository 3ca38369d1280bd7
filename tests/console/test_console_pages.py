"""The console reads like a product (Django's test client): its name in every header, figures
for people (no raw JSON, no float with more than 6 decimals, the exact value in a title), names
instead of ids, the tenant page's buttons each refused (403) without its permission, an index
that says what is happening and what to expect, empty states that say what to do."""

import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import HashId, Tenant
from calibration.models import Evaluation
from capture.models import CaptureSession
from guard.models import Counter, Refusal
from guard.throttle import RATE_SCOPE
from liveness.models import LivenessCheck
from ml import profiles
from tests.conftest import stored_calibration
from tests.console.test_admin_pages import make_evaluation
from tests.console.test_usage import plans_of, queries_of
from tests.guard.test_admin_permissions import snapshot, staff
from tests.pages import unreadable, visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def console() -> dict[str, Any]:
    """A row of every registered model, its figures formatted, not raw."""
    tenant = Tenant.objects.create(
        name="Bank of Tests", request_limit=100, requests_used=97, threshold=0.7246717604179921
    )
    other = Tenant.objects.create(name="Other Co", threshold=0.5)
    HashId.issue(tenant)
    check = LivenessCheck.objects.create(
        tenant=tenant,
        is_live=True,
        score=0.9989999999999999,
        latency_ms=19.752186999994592,
        capture="frame",
        request_id="0123456789abcdef0123456789abcdef",
    )
    LivenessCheck.objects.create(tenant=tenant, refused_code="no_face", latency_ms=7.25)
    today = timezone.now().date()
    Refusal.objects.create(
        day=today, code="invalid_credentials", status=401, client="203.0.113.0/24", hits=1
    )
    Refusal.objects.create(day=today, code="limit_reached", status=429, tenant_id=other.pk, hits=3)
    Counter.objects.create(scope=RATE_SCOPE, subject=str(other.pk), bucket=1_764_700_000, hits=2)
    stored_calibration(tenant, threshold=0.612345678, params={"a": 0.71224, "b": -0.11551})
    make_evaluation()
    CaptureSession.objects.create(
        tenant=tenant,
        token_digest="0" * 64,
        expires_at=timezone.now() + timedelta(minutes=5),
        state=CaptureSession.DONE,
        is_live=True,
        score=0.9989999999999999,
    )
    return {"tenant": tenant, "other": other, "check": check}


def pages(console: dict[str, Any]) -> list[tuple[str, str]]:
    """(model label or page, URL): the index, every registered model's list and change page,
    and the tenant's own pages."""
    tenant = console["tenant"]
    found = [("index", reverse("admin:index"))]
    for model in admin.site._registry:
        app, name = model._meta.app_label, model._meta.model_name
        found.append((model._meta.label_lower, reverse(f"admin:{app}_{name}_changelist")))
        row = model._default_manager.order_by("pk").first()
        if row is not None:
            url = reverse(f"admin:{app}_{name}_change", args=[row.pk])
            found.append((model._meta.label_lower, url))
    for name in ("usage", "calibrate", "history"):
        found.append((f"tenant {name}", reverse(f"admin:accounts_tenant_{name}", args=[tenant.pk])))
    return found


def test_every_page_has_the_products_name_and_shows_figures_for_people(
    admin_client: Client, console: dict[str, Any]
) -> None:
    for _label, url in pages(console):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "Django administration" not in page and "Django site admin" not in page, url
        assert "Liveness service" in page, url
        assert unreadable(visible_text(page)) == [], url
        assert "`" not in visible_text(page), url  # help texts in code, not backticks


def row_text(page: str, element: str) -> str:
    found = re.search(rf'<tr id="{element}"[^>]*>(.*?)</tr>', page, re.S)
    assert found is not None, element
    return visible_text(found.group(1))


def test_the_login_page_has_the_products_name(client: Client) -> None:
    page = client.get(reverse("admin:login")).content.decode()
    assert "Liveness service" in page and "Django" not in visible_text(page)


def test_the_checks_list_formats_its_figures_and_keeps_the_exact_ones(
    admin_client: Client, console: dict[str, Any]
) -> None:
    page = admin_client.get(reverse("admin:liveness_livenesscheck_changelist")).content.decode()
    text = visible_text(page)
    assert "19.8 ms" in text and "0.9990" in text and "refused: no_face" in text
    assert 'title="19.752186999994592"' in page and 'title="0.9989999999999999"' in page
    assert "0123456789abcdef0123456789abcdef" in text
    detail = reverse("admin:liveness_livenesscheck_change", args=[console["check"].pk])
    assert 'title="19.752186999994592"' in admin_client.get(detail).content.decode()


@pytest.mark.parametrize("value", ["9" * 22, "9" * 5000, "0" * 4999 + "99999"])
def test_a_refusals_tenant_filter_no_tenant_has_lists_none(
    admin_client: Client, console: dict[str, Any], value: str
) -> None:
    """As an unknown tenant id: 5,000 digits were int()-ed past Python's 4,300-digit limit
    (a ValueError: a 500), leading zeros counted too."""
    admin_client.raise_request_exception = False
    url = reverse("admin:guard_refusal_changelist")
    response = admin_client.get(url, {"tenant": value})
    assert response.status_code == 200
    assert re.findall(r'class="field-tenant_name">(.*?)<', response.content.decode()) == []


def test_refusals_and_throttle_windows_name_the_tenant(
    admin_client: Client, console: dict[str, Any]
) -> None:
    other = console["other"]
    page = admin_client.get(reverse("admin:guard_refusal_changelist")).content.decode()
    rows = re.findall(r'<td class="field-tenant_name">(.*?)</td>', page)
    assert sorted(rows) == ["Other Co", "no known tenant"]
    assert f'<td class="field-tenant_name">{other.pk}</td>' not in page
    assert f"?tenant={other.pk}" in page and ">Other Co</a>" in page  # the filter, by name
    filtered = admin_client.get(reverse("admin:guard_refusal_changelist"), {"tenant": other.pk})
    assert re.findall(r'class="field-tenant_name">(.*?)<', filtered.content.decode()) == [
        "Other Co"
    ]
    counters = admin_client.get(reverse("admin:guard_counter_changelist")).content.decode()
    assert '<td class="field-subject_shown">Other Co</td>' in counters
    assert "2025-12-02 18:26:40" in counters  # the window's start, not 1764700000


def test_the_hash_id_filter_says_active_or_revoked(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:accounts_hashid_changelist")).content.decode()
    assert "Active (accepted)" in page and "Revoked (answered 401)" in page
    assert "Not empty" not in page


def test_help_texts_have_no_literal_backticks(
    admin_client: Client, console: dict[str, Any]
) -> None:
    url = reverse("admin:accounts_tenant_change", args=[console["tenant"].pk])
    page = admin_client.get(url).content.decode()
    assert "<code>manage.py evaluate</code>" in page
    assert "`" not in visible_text(page)


def test_the_index_says_what_is_happening(admin_client: Client, console: dict[str, Any]) -> None:
    text = visible_text(admin_client.get(reverse("admin:index")).content.decode())
    assert "2 checks, average latency 13.5 ms" in text
    assert "1 live, 0 spoof (100.0 % live); 1 image the quality gates could not judge" in text
    assert "1 with 401 (no known tenant), 3 with 429" in text
    assert "Bank of Tests: 3 of 100 left" in text


def test_the_refusal_summary_splits_each_status(admin_client: Client) -> None:
    today = timezone.now().date()
    tenant = Tenant.objects.create(name="Mixed")
    for code, status, tenant_id, client, hits in (
        ("invalid_credentials", 401, 0, "198.51.100.0/24", 2),
        ("invalid_credentials", 401, tenant.pk, "", 3),
        ("auth_throttled", 429, 0, "198.51.100.0/24", 4),
    ):
        Refusal.objects.create(
            day=today, code=code, status=status, tenant_id=tenant_id, client=client, hits=hits
        )
    old = today - timedelta(days=1)
    Refusal.objects.create(day=old, code="limit_reached", status=429, tenant_id=tenant.pk, hits=9)
    text = visible_text(admin_client.get(reverse("admin:index")).content.decode())
    assert "5 with 401 (2 with no known tenant), 4 with 429 (no known tenant)" in text


def test_recent_changes_show_the_commands_entries(admin_client: Client) -> None:
    call_command("create_tenant", "Scripted Co", "--limit", "3", stdout=StringIO())
    page = admin_client.get(reverse("admin:index")).content.decode()
    changes = visible_text(page.split('id="recent-changes"')[1].split("</div>")[0])
    assert "Scripted Co" in changes and "(manage.py create_tenant)" in changes
    assert "facia-system" in changes


def test_recent_changes_only_of_models_the_user_may_view() -> None:
    tenant = Tenant.objects.create(name="Hidden Co")
    LogEntry.objects.log_actions(
        user_id=User.objects.create_user("someone").pk,
        queryset=[tenant],
        action_flag=2,
        change_message="Changed secretly.",
        single_object=True,
    )
    nobody = Client()
    nobody.force_login(User.objects.create_user("nobody", is_staff=True))
    assert "Hidden Co" not in nobody.get(reverse("admin:index")).content.decode()
    assert "Hidden Co" in staff().get(reverse("admin:index")).content.decode()


def test_accuracy_is_not_measured_until_the_maps_are_fitted(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As shipped before the maps were fitted (the fitted file has its own test below).
    unfitted = {
        "maps": {},
        "provenance": {"fitted": False, "note": "identity maps: not fitted yet"},
    }
    monkeypatch.setattr(profiles, "score_maps", lambda: unfitted)
    page = admin_client.get(reverse("admin:index")).content.decode()
    row = row_text(page, "accuracy-fast-crop")
    assert row == "fast crop not measured"
    assert "Not measured yet (identity maps: not fitted yet)." in visible_text(page)
    assert "docs/evaluator/accuracy.md" in page


def test_accuracy_reads_the_fitted_provenance(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted: dict[str, Any] = {
        "maps": {},
        "provenance": {
            "fitted": True,
            "sources": ["a", "b", "c"],
            "images": 1234,
            "figures": {
                "thorough": {
                    "frame": {
                        "APCER": [0.1234, 0.05, 0.2],
                        "BPCER": [0.08, 0.02, 0.15],
                        "ACER": [0.1017, 0.04, 0.17],
                        "AUC": [0.9312345, 0.88, 0.97],
                    }
                }
            },
        },
    }
    monkeypatch.setattr(profiles, "score_maps", lambda: fitted)
    page = admin_client.get(reverse("admin:index")).content.decode()
    row = row_text(page, "accuracy-thorough-frame")
    assert row == "thorough frame 12.3 % (5.0-20.0 %) 8.0 % (2.0-15.0 %) 10.2 % (4.0-17.0 %) 0.931"
    crop = row_text(page, "accuracy-thorough-crop")
    assert "not measured" in crop
    fitted["provenance"]["leave_one_source_out"] = fitted["provenance"].pop("figures")
    fitted["provenance"]["leave_one_source_out"]["fast"] = {
        "crop": {"before": {"ACER": 0.4}, "after": {"ACER": 0.25, "AUC": 0.8}}
    }
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert row_text(page, "accuracy-fast-crop") == (
        "fast crop not measured not measured 25.0 % 0.800"
    )
    assert "over 3 sources, 1,234 images" in visible_text(page)


def test_an_empty_evaluations_list_says_how_to_make_one(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:calibration_evaluation_changelist")).content.decode()
    assert 'id="evaluations-empty"' in page
    assert "manage.py evaluate DIR --profile fast" in visible_text(page)
    make_evaluation()
    listed = admin_client.get(reverse("admin:calibration_evaluation_changelist"))
    assert 'id="evaluations-empty"' not in listed.content.decode()


def test_the_latest_evaluations_say_how_they_were_scored(admin_client: Client) -> None:
    """An AUC means little without its crop policy and scoring: the index names both, and an
    evaluation scored by other models or maps than today's says so."""
    evaluation = make_evaluation()
    line = visible_text(admin_client.get(reverse("admin:index")).content.decode())
    assert f"fast #{evaluation.pk} (crops judged, shipped maps; AUC 0.813" in line
    Evaluation.objects.filter(pk=evaluation.pk).update(crop_policy="refuse", scored_with="")
    line = visible_text(admin_client.get(reverse("admin:index")).content.decode())
    assert f"fast #{evaluation.pk} (crops refused, older models or maps than today's; AUC" in line
    Evaluation.objects.filter(pk=evaluation.pk).update(calibrated=True, calibration=7)
    line = visible_text(admin_client.get(reverse("admin:index")).content.decode())
    assert f"fast #{evaluation.pk} (crops refused, calibration #7; AUC" in line


# --- the tenant page's buttons ------------------------------------------------------------

BUTTONS = {
    "issue-hash-id": ("accounts_tenant_issue", "accounts.add_hashid"),
    "reset-quota": ("accounts_tenant_reset_quota", "accounts.change_tenant"),
}


@pytest.mark.parametrize("button", sorted(BUTTONS))
def test_a_button_is_shown_and_works_only_with_its_permission(
    console: dict[str, Any], button: str
) -> None:
    name, permission = BUTTONS[button]
    tenant = console["tenant"]
    page_url = reverse("admin:accounts_tenant_change", args=[tenant.pk])
    url = reverse(f"admin:{name}", args=[tenant.pk])
    viewer, allowed = staff(), staff(permission)
    assert f'id="{button}"' not in viewer.get(page_url).content.decode()
    assert f'id="{button}"' in allowed.get(page_url).content.decode()
    before = snapshot()
    assert viewer.post(url).status_code == 403
    assert viewer.get(url).status_code == 403
    assert allowed.get(url).status_code == 405  # a GET changes nothing
    assert snapshot() == before
    assert allowed.post(url).status_code in (200, 302)
    assert snapshot() != before


def test_the_buttons_need_the_pages_csrf_token(console: dict[str, Any]) -> None:
    tenant = console["tenant"]
    user = User.objects.create_superuser("csrf-admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse("admin:accounts_tenant_reset_quota", args=[tenant.pk])
    assert client.post(url).status_code == 403
    tenant.refresh_from_db()
    assert tenant.requests_used == 97
    page = client.get(reverse("admin:accounts_tenant_change", args=[tenant.pk])).content.decode()
    form = page.split('id="reset-quota-form"')[1]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token is not None
    response = client.post(url, {"csrfmiddlewaretoken": token.group(1)}, follow=True)
    assert "Quota reset for Bank of Tests." in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    (entry,) = LogEntry.objects.filter(object_id=str(tenant.pk), user=user)
    assert entry.get_change_message() == "Reset quota (97 used before)."


def test_the_issue_button_shows_the_new_hash_id_once_and_audits_it(
    admin_client: Client, admin_user: User, console: dict[str, Any]
) -> None:
    tenant = console["tenant"]
    response = admin_client.post(reverse("admin:accounts_tenant_issue", args=[tenant.pk]))
    secret = re.search(
        r'<code id="new-hash-id-\d+" class="new-hash-id">(\S+)</code>', response.content.decode()
    )
    assert secret is not None
    newest = HashId.objects.filter(tenant=tenant).latest("pk")
    assert secret.group(1)[:8] == newest.prefix
    assert "no-store" in response["Cache-Control"]
    entry = LogEntry.objects.filter(object_id=str(tenant.pk)).latest("pk")
    assert (entry.user, entry.get_change_message()) == (
        admin_user,
        f"Issued hash_id {newest.prefix}…",
    )


def test_counts_have_thousands_separators(admin_client: Client) -> None:
    tenant = Tenant.objects.create(name="Big Co", request_limit=250_000, requests_used=12_345)
    listing = visible_text(
        admin_client.get(reverse("admin:accounts_tenant_changelist")).content.decode()
    )
    assert "12,345 / 250,000" in listing and "237,655" in listing
    usage = admin_client.get(reverse("admin:accounts_tenant_usage", args=[tenant.pk]))
    assert "Quota: 237,655 remaining (12,345 used of 250,000)." in visible_text(
        usage.content.decode()
    )


def test_todays_checks_are_a_range_of_the_index(admin_client: Client) -> None:
    """The index's query of today's checks, as the ORM sends it: a range of created_at, no
    Python function per row. Before, ``created_at__date`` called one on every record, no index:
    3.76 s over 247,000 records, and /admin/ took 7.55 s (its midnights: tests/console/
    test_usage.py)."""
    tenant = Tenant.objects.create(name="acme")
    LivenessCheck.objects.create(tenant=tenant, is_live=True, latency_ms=5.0)
    sql = queries_of(admin_client, reverse("admin:index"))
    (plan,) = plans_of(sql)
    assert re.fullmatch(
        r"SEARCH liveness_livenesscheck USING INDEX liveness_livenesscheck_created_at_\w+ "
        r"\(created_at>\? AND created_at<\?\)",
        plan,
    ), plan
    assert "1 check, average latency" in visible_text(
        admin_client.get(reverse("admin:index")).content.decode()
    )
