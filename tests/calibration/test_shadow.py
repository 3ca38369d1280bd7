"""Shadow mode: a candidate calibration beside the active one. Real checks through /liveness
record both verdicts (the answer uses the active one) from one engine run; the tenant's admin
page counts the verdicts the candidate would flip; promote and discard, each with its
permission."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models import Q
from django.test import Client
from django.urls import reverse

from accounts.models import Tenant
from calibration.models import Calibration, revert_calibration
from liveness.models import LivenessCheck
from liveness.runtime import get_engine
from ml import calibration, profiles
from tests.calibration.test_calibrate import LIVE, SPOOF, calibrate, inspected, linked
from tests.conftest import Post, data_uri, stored_calibration

pytestmark = pytest.mark.usefixtures("warm_engine")

# Live face crops pushed down, spoof full frames pushed up: both kinds of flip happen.
CANDIDATE = {"frame": {"a": 1.0, "b": 5.0}, "crop": {"a": 1.0, "b": -3.0}}
IMAGES = (*LIVE, *SPOOF)


def in_shadow(tenant: Tenant, days: float = 1.0, threshold: float = 0.5) -> Calibration:
    candidate = stored_calibration(tenant, params=CANDIDATE, threshold=threshold)
    now = time.time()
    tenant.shadow_calibration = {
        "id": candidate.pk,
        "profile": tenant.profile,
        "fingerprint": candidate.fingerprint,
        "maps": CANDIDATE,
        "threshold": threshold,
        "since": now - 1,
        "until": now + days * 86400,
    }
    tenant.save()
    return candidate


def tenant_page(client: Client, tenant: Tenant) -> str:
    return client.get(reverse("admin:accounts_tenant_change", args=[tenant.pk])).content.decode()


def flips_on_page(page: str) -> tuple[int, int]:
    live = page.split('id="shadow-live-to-spoof">')[1].split("<")[0]
    spoof = page.split('id="shadow-spoof-to-live">')[1].split("<")[0]
    return int(live), int(spoof)


def test_checks_record_both_verdicts_and_the_page_counts_flips(
    make_tenant: Callable[..., Any],
    post_liveness: Post,
    admin_client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, secret = make_tenant("shadowed")
    in_shadow(tenant)
    engine = get_engine()
    runs: list[int] = []
    judge = engine.judge

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return judge(*args, **kwargs)

    monkeypatch.setattr(engine, "judge", counted)
    maps = calibration.maps_of({"maps": CANDIDATE})

    expected = {"live_to_spoof": 0, "spoof_to_live": 0}
    judged = 0
    for path in IMAGES:
        response = post_liveness({"hash_id": secret, "selfie_image": data_uri(path)})
        if response.status_code != 201:
            continue  # a gate's refusal records no verdict, nor a shadow one
        judged += 1
        result = response.json()["liveness_result"]
        z, kind = inspected(path, tenant)
        check = LivenessCheck.objects.filter(tenant=tenant).order_by("-pk").first()
        assert check is not None
        # the answer: the active scale (the shipped map); the record: both
        assert check.score is not None and round(check.score, 7) == result["liveness_score"]
        assert check.is_live == bool(result["is_live"])
        assert check.shadow_score == pytest.approx(maps[kind].p(z), abs=1e-9)
        assert check.shadow_is_live == (maps[kind].p(z) >= 0.5)
        if check.is_live and not check.shadow_is_live:
            expected["live_to_spoof"] += 1
        if not check.is_live and check.shadow_is_live:
            expected["spoof_to_live"] += 1
    assert len(runs) == len(IMAGES)  # one engine run per check, shadow or not
    assert expected["live_to_spoof"] > 0 and expected["spoof_to_live"] > 0

    page = tenant_page(admin_client, tenant)
    assert flips_on_page(page) == (expected["live_to_spoof"], expected["spoof_to_live"])
    assert f"Of <strong>{judged}</strong> checks recorded with both verdicts" in page
    assert 'id="shadow-promote"' in page and 'id="shadow-discard"' in page


def test_no_shadow_verdict_outside_the_period(
    make_tenant: Callable[..., Any], post_liveness: Post
) -> None:
    tenant, secret = make_tenant("ended")
    in_shadow(tenant, days=-1)
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE[0])})
    assert response.status_code == 201
    check = LivenessCheck.objects.get(tenant=tenant)
    assert (check.shadow_score, check.shadow_is_live) == (None, None)


def staff(*perms: str) -> Client:
    """A staff user who may view tenants, their calibrations and the checks the flips are
    counted from (tests/guard/test_admin_permissions.py: each block needs its own), plus
    ``perms`` of accounts."""
    user = User.objects.create_user(f"staff-{len(perms)}-{time.monotonic_ns()}", is_staff=True)
    wanted = ["view_tenant", *perms]
    readers = Q(content_type__app_label="calibration", codename="view_calibration") | Q(
        content_type__app_label="liveness", codename="view_livenesscheck"
    )
    user.user_permissions.set(
        Permission.objects.filter(
            Q(content_type__app_label="accounts", codename__in=wanted) | readers
        )
    )
    client = Client()
    client.force_login(user)
    return client


def test_promote_and_discard_need_change_tenant(make_tenant: Callable[..., Any]) -> None:
    tenant, _ = make_tenant("guarded", threshold=0.5)
    candidate = in_shadow(tenant, threshold=0.61)
    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    viewer = staff()
    assert 'id="shadow-promote"' not in tenant_page(viewer, tenant)  # no button to click
    assert "shadow-live-to-spoof" in tenant_page(viewer, tenant)  # the counts are shown
    for choice in ("promote", "discard"):
        assert viewer.post(url, {"shadow": choice}).status_code == 403
    tenant.refresh_from_db()
    assert tenant.shadow_calibration is not None and tenant.calibration is None

    operator = staff("change_tenant")
    assert operator.get(url).status_code == 405
    response = operator.post(url, {"shadow": f"promote:{candidate.pk}"}, follow=True)
    assert f"Promoted shadow candidate #{candidate.pk}" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.shadow_calibration is None and tenant.threshold == 0.61
    assert Tenant.objects.get(pk=tenant.pk).calibration == {
        "id": candidate.pk,
        "profile": "fast",
        "fingerprint": profiles.fingerprint("fast"),
        "maps": CANDIDATE,
    }

    second = in_shadow(tenant)
    response = operator.post(url, {"shadow": f"discard:{second.pk}"}, follow=True)
    assert f"Discarded shadow candidate #{second.pk}" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.shadow_calibration is None
    assert (Tenant.objects.get(pk=tenant.pk).calibration or {}).get("id") == candidate.pk
    second.refresh_from_db()
    assert second.reverted_at is not None


def test_calibrate_shadow_sets_a_candidate_and_keeps_the_active_one(
    make_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    """What it says is true of a tenant with no active calibration: the shipped score maps
    answer ("the active calibration still answers" was printed and put in the history), a
    one-day shadow is "for 1 day" in the history too (it said "for 1 days"), and the output
    says the candidate it replaces is set aside, as the history, the job and the docs do (it
    printed "replacing candidate #4:"). Found by an audit of the shadow messages."""
    tenant, _ = make_tenant("candidate", threshold=0.55)
    out, _ = calibrate("candidate", str(linked(tmp_path, LIVE, SPOOF)), "--shadow", "7")
    stored = Calibration.objects.get(tenant=tenant)
    assert f"stored as calibration #{stored.pk}, in shadow for 7 days: the shipped score " in out
    assert "maps still answer; every check also records" in out and "active" not in out
    assert history(tenant)[-1] == (
        f"Shadow candidate: {stored}, for 7 days (the shipped score maps still answer). "
        "(manage.py calibrate)"
    )
    tenant.refresh_from_db()
    assert tenant.calibration is None and tenant.threshold == 0.55  # nothing switched
    shadow = tenant.shadow_calibration
    assert shadow["id"] == stored.pk and shadow["maps"] == stored.params
    assert shadow["until"] - shadow["since"] == pytest.approx(7 * 86400, abs=1)
    assert "replacing" not in out and "replacing" not in history(tenant)[-1]
    with pytest.raises(Exception, match="1 to 90 days"):
        calibrate("candidate", str(tmp_path), "--shadow", "0")
    out, _ = calibrate("candidate", str(tmp_path), "--shadow", "1")
    newer = Calibration.objects.exclude(pk=stored.pk).get(tenant=tenant)
    assert (
        f"in shadow for 1 day, replacing candidate #{stored.pk} (set aside): the shipped score "
        "maps still answer;" in out
    )
    assert history(tenant)[-1] == (
        f"Shadow candidate: {newer}, for 1 day, replacing candidate #{stored.pk} (set aside) "
        "(the shipped score maps still answer). (manage.py calibrate)"
    )


def test_calibrate_shadow_beside_an_active_calibration_says_it_still_answers(
    make_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    tenant, _ = make_tenant("beside", threshold=0.55)
    folder = str(linked(tmp_path, LIVE, SPOOF))
    calibrate("beside", folder)
    active = Calibration.objects.get(tenant=tenant)
    out, _ = calibrate("beside", folder, "--shadow", "2")
    stored = Calibration.objects.exclude(pk=active.pk).get(tenant=tenant)
    assert (
        f"stored as calibration #{stored.pk}, in shadow for 2 days: the active calibration "
        "still answers; every check also records" in out
    )
    assert history(tenant)[-1] == (
        f"Shadow candidate: {stored}, for 2 days (the active calibration still answers). "
        "(manage.py calibrate)"
    )


@pytest.mark.parametrize("rule", [(), ("--target-apcer", "0.2")])
def test_a_promoted_candidate_applies_over_the_threshold_set_while_it_ran(
    make_tenant: Callable[..., Any], admin_client: Client, tmp_path: Path, rule: tuple[str, ...]
) -> None:
    """An audit's repro: a candidate stored against threshold 0.5, the operator then set 0.7.
    Promoted, it put back 0.5 ("Threshold 0.5000: kept" in its sentences) and a revert
    restored 0.5, not the 0.7 of just before. Now a rule that kept the threshold keeps the
    one of the promote, a threshold it set applies, and a revert goes back to 0.7; every
    sentence shown says so."""
    from tests.accounts.test_admin import run_action

    tenant, _ = make_tenant("rebased", threshold=0.5)
    calibrate("rebased", str(linked(tmp_path, LIVE, SPOOF)), "--shadow", "1", *rule)
    candidate = Calibration.objects.get(tenant=tenant)
    kept = not rule
    assert (candidate.threshold == 0.5) == kept
    Tenant.objects.filter(pk=tenant.pk).update(threshold=0.7)  # while it is in shadow

    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    page = admin_client.post(url, {"shadow": f"promote:{candidate.pk}"}, follow=True)
    tenant.refresh_from_db()
    candidate.refresh_from_db()
    expected = 0.7 if kept else candidate.threshold
    assert tenant.threshold == expected and tenant.calibration["id"] == candidate.pk
    assert (candidate.threshold, candidate.previous_threshold) == (expected, 0.7)
    said = f"{expected:.4f} kept" if kept else f"0.7000 → {expected:.4f}"
    promoted = f"Promoted shadow candidate #{candidate.pk}"
    assert history(tenant)[-1].startswith(promoted) and history(tenant)[-1].endswith(
        f": threshold {said}."
    )
    assert f": threshold {said}." in page.content.decode()
    sentence = (
        f"Threshold {expected:.4f}: kept" if kept else f"Threshold 0.7000 → {expected:.4f}, chosen"
    )
    threshold_said = [s for s in candidate.figures["sentences"] if s.startswith("Threshold ")]
    assert len(threshold_said) == 1 and threshold_said[0].startswith(sentence)
    assert candidate.figures["threshold"]["before"] == 0.7
    summary = tenant_page(admin_client, tenant)
    assert sentence in summary and "Threshold 0.5000" not in summary
    assert "0.7000 before the first calibration" in summary

    response = run_action(admin_client, "tenant", "revert_to_uncalibrated", tenant.pk)
    assert "uncalibrated, threshold 0.7000" in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.calibration, tenant.threshold) == (None, 0.7)


def test_a_new_candidate_sets_the_previous_one_aside(make_tenant: Callable[..., Any]) -> None:
    from django.utils import timezone

    tenant, _ = make_tenant("twice")
    now = timezone.now()
    first = stored_calibration(tenant)
    first.shadow(now, now + timedelta(days=1))
    second = stored_calibration(tenant)
    Calibration.objects.get(pk=second.pk).shadow(now, now + timedelta(days=1))
    first.refresh_from_db()
    assert first.reverted_at is not None
    assert (Tenant.objects.get(pk=tenant.pk).shadow_calibration or {}).get("id") == second.pk


def button_value(page: str, button: str) -> str:
    """The value the tenant page's shadow ``button`` (promote or discard) posts."""
    return page.split(f'id="shadow-{button}" name="shadow" value="')[1].split('"')[0]


def switch_state(tenant: Tenant) -> tuple[Any, ...]:
    """What a promotion or a discard changes: the tenant's calibrations and threshold, which
    calibrations are set aside, the history."""
    found = Tenant.objects.get(pk=tenant.pk)
    aside = sorted(Calibration.objects.filter(reverted_at__isnull=False).values_list("pk"))
    return (found.calibration, found.shadow_calibration, found.threshold, aside, history(found))


def history(tenant: Tenant) -> list[str]:
    from django.contrib.admin.models import LogEntry

    entries = LogEntry.objects.filter(object_id=str(tenant.pk)).order_by("pk")
    return [entry.change_message for entry in entries]


@pytest.mark.parametrize("button", ["promote", "discard"])
def test_a_button_acts_only_on_the_candidate_its_page_showed(
    make_tenant: Callable[..., Any], button: str
) -> None:
    """An upload job's candidate set after the page was read: the button names the one the
    page showed, refused; the reloaded page's button acts on the new one."""
    from django.utils import timezone

    tenant, _ = make_tenant("raced", threshold=0.5)
    shown = in_shadow(tenant, threshold=0.5)
    operator = staff("change_tenant")
    value = button_value(tenant_page(operator, tenant), button)
    assert value == f"{button}:{shown.pk}"
    newer = stored_calibration(tenant, params=CANDIDATE, threshold=0.8189)
    newer.shadow(timezone.now(), timezone.now() + timedelta(days=1))  # as store() sets it
    before = switch_state(tenant)
    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    page = operator.post(url, {"shadow": value}, follow=True).content.decode()
    assert f"candidate #{shown.pk}, which the page showed, is no longer in shadow" in page
    assert f"candidate #{newer.pk} is. Nothing was changed" in page
    assert switch_state(tenant) == before
    assert before[1]["id"] == newer.pk and before[:3] == (None, before[1], 0.5)

    value = button_value(tenant_page(operator, tenant), button)
    page = operator.post(url, {"shadow": value}, follow=True).content.decode()
    done = "Promoted" if button == "promote" else "Discarded"
    assert f"{done} shadow candidate #{newer.pk}" in page
    found = Tenant.objects.get(pk=tenant.pk)
    assert found.shadow_calibration is None
    assert found.threshold == (0.8189 if button == "promote" else 0.5)


@pytest.mark.parametrize(
    "posted",
    [{}, {"shadow": "promote"}, {"shadow": "discard"}, {"shadow": "promote:"}]
    + [{"shadow": v} for v in ("discard:abc", "promote:{id}x", "promote:-{id}", "keep:{id}")]
    + [{"shadow": "promote:{id}:{id}"}, {"shadow": "promote:\u0661"}],
)
def test_a_switch_that_does_not_name_the_candidate_is_refused(
    make_tenant: Callable[..., Any], posted: dict[str, str]
) -> None:
    tenant, _ = make_tenant("unnamed", threshold=0.5)
    candidate = in_shadow(tenant, threshold=0.61)
    before = switch_state(tenant)
    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    data = {key: value.format(id=candidate.pk) for key, value in posted.items()}
    page = staff("change_tenant").post(url, data, follow=True).content.decode()
    assert "did not name the candidate the page showed" in page
    assert switch_state(tenant) == before


def test_a_candidate_that_keeps_the_threshold_judges_at_the_tenants_threshold_of_each_check(
    make_tenant: Callable[..., Any], post_liveness: Post, tmp_path: Path
) -> None:
    """Promoted, a candidate whose rule kept the threshold keeps the tenant's threshold of
    then; its shadow verdicts were taken at the threshold copied when it was stored, so an
    operator's 0.5 -> 0.99999 meanwhile counted flips the promote would not make."""
    tenant, secret = make_tenant("kept in shadow")
    calibrate("kept in shadow", str(linked(tmp_path, LIVE, SPOOF)), "--shadow", "1")
    tenant.refresh_from_db()
    assert tenant.shadow_calibration is not None
    assert tenant.shadow_calibration["threshold"] == 0.5  # the tenant's, copied when stored
    Tenant.objects.filter(pk=tenant.pk).update(threshold=0.99999)
    between = []
    for path in LIVE:
        response = post_liveness({"hash_id": secret, "selfie_image": data_uri(path)})
        if response.status_code != 201:
            continue
        check = LivenessCheck.objects.filter(tenant=tenant).order_by("-pk").first()
        assert check is not None and check.shadow_score is not None
        assert check.shadow_is_live == (check.shadow_score >= 0.99999)
        if 0.5 <= check.shadow_score < 0.99999:
            between.append(path.name)  # live at the copied 0.5, not at the tenant's threshold
    assert between  # the images that tell the two thresholds apart


# An active calibration set while a candidate is in shadow, unlike the shipped maps.
ACTIVE = {"frame": {"a": 2.0, "b": 1.0}, "crop": {"a": 0.5, "b": -1.0}}


@pytest.mark.parametrize("switched", ["activated", "reverted"])
def test_a_promoted_candidate_says_what_it_changes_from_the_maps_it_replaced(
    make_tenant: Callable[..., Any], admin_client: Client, tmp_path: Path, switched: str
) -> None:
    """An audit's finding: a candidate fitted over the shipped maps, promoted over a
    calibration made active since (or fitted over a calibration reverted since), still said
    "slope <the maps of then> → <its own>" and "a full frame that scored 0.50 now scores ..."
    of the maps it was fitted over, and its maps table showed them as "before": false of what
    the promote replaced. Its per-kind sentences and maps are now taken from the maps it
    replaced; its figures "now", which cannot be retaken, say when they were taken and with
    what."""
    tenant, _ = make_tenant("replaced", threshold=0.5)
    shipped = {k: profiles.shipped(tenant.profile, k).to_dict() for k in ("frame", "crop")}
    active = stored_calibration(tenant, params=ACTIVE, threshold=0.5)
    if switched == "reverted":
        active.activate()
    calibrate("replaced", str(linked(tmp_path, LIVE, SPOOF)), "--shadow", "1")
    candidate = Calibration.objects.exclude(pk=active.pk).get(tenant=tenant)
    if switched == "activated":  # while the candidate is in shadow
        active.activate()
        fitted_over, replaced, maps_replaced = (
            "the shipped maps",
            f"calibration #{active.pk}'s maps",
            ACTIVE,
        )
    else:
        revert_calibration(Tenant.objects.get(pk=tenant.pk))
        fitted_over, replaced, maps_replaced = (
            f"calibration #{active.pk}'s maps",
            "the shipped maps",
            shipped,
        )

    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    admin_client.post(url, {"shadow": f"promote:{candidate.pk}"})
    tenant.refresh_from_db()
    candidate.refresh_from_db()
    assert tenant.calibration["id"] == candidate.pk
    page = tenant_page(admin_client, tenant)
    said = candidate.figures["sentences"]
    for kind, many, one in (
        ("frame", "Full frames", "full frame"),
        ("crop", "Face crops", "face crop"),
    ):
        before = profiles.Platt(**maps_replaced[kind])
        after = profiles.Platt(**candidate.params[kind])
        moved = after.p(-before.b / before.a)  # a capture that scored 0.50 under it
        fits = candidate.figures["maps"][kind]
        sentence = (
            f"{many} ({fits['live']} live and {fits['spoof']} spoof): slope {before.a:.3f} → "
            f"{after.a:.3f}, offset {before.b:.3f} → {after.b:.3f}; a {one} that scored 0.50 "
        )
        (kind_said,) = [s for s in said if s.startswith(many)]
        assert kind_said.startswith(sentence) and f"scores {moved:.2f}" in kind_said
        assert sentence in page
        assert fits["before"] == maps_replaced[kind]  # the maps table's "before"
    explained = (
        f'Its figures "now" were taken when it was fitted, with {fitted_over} at threshold '
        f"0.5000; promoted, it replaced {replaced} at threshold 0.5000, which they do not "
        "describe."
    )
    threshold_at = next(i for i, s in enumerate(said) if s.startswith("Threshold "))
    assert said[threshold_at + 1] == explained
    assert explained.replace('"', "&quot;").replace("'", "&#x27;") in page
    assert (
        f"when fitted: {fitted_over}, not refitted (threshold 0.5000)".replace("'", "&#x27;")
        in page
    )
    assert re.findall(r".{80}now: .{40}", page) == [] and "The figures now use" not in page
    (held_out,) = [s for s in said if s.startswith("Figures held out (")]
    assert "&quot;now&quot; (when fitted)" in page and '"now" (when fitted)' in held_out
    if switched == "reverted":  # fitted over a calibration: its in-sample sentence
        assert any(
            s.startswith(f'The figures "now" (when it was fitted) used {fitted_over} as they are')
            for s in said
        )


@pytest.mark.django_db(transaction=True)  # autocommit, as the admin runs: no test transaction
@pytest.mark.parametrize("button", ["promote", "discard"])
def test_a_switch_whose_history_entry_fails_changes_nothing(
    make_tenant: Callable[..., Any], admin_client: Client, button: str
) -> None:
    """The button promoted or discarded the candidate in its own transaction and wrote the
    history entry after it: a process killed between the two (here, the entry's insert
    refused) left the switch made with no entry, and the page answered 500. One transaction
    now: nothing changed, and the page says so."""
    from tests.history import history_refused

    tenant, _ = make_tenant("Unrecorded switch", threshold=0.5)
    candidate = in_shadow(tenant, threshold=0.61)
    before = switch_state(tenant)
    assert before[:4] == (None, before[1], 0.5, []) and before[1]["id"] == candidate.pk
    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    admin_client.raise_request_exception = False  # a 500 is answered, as in production
    with history_refused():
        response = admin_client.post(url, {"shadow": f"{button}:{candidate.pk}"}, follow=True)
    assert switch_state(tenant) == before  # before: switched, with no history entry
    assert response.status_code == 200  # before: 500
    done = "Promoted" if button == "promote" else "Discarded"
    said = (
        f"Tenant “Unrecorded switch”: candidate #{candidate.pk} was not {done.lower()}. Nothing was"
    )
    assert said in response.content.decode()

    response = admin_client.post(url, {"shadow": f"{button}:{candidate.pk}"}, follow=True)
    assert f"{done} shadow candidate #{candidate.pk}" in response.content.decode()
    after = switch_state(tenant)  # with its history written: both kept
    assert after[1] is None and after[4] == [*before[4], after[4][-1]]
    assert after[4][-1].startswith(f"{done} shadow candidate #{candidate.pk}")


@pytest.mark.django_db(transaction=True)  # autocommit, as the admin runs: no test transaction
def test_a_revert_whose_history_entry_fails_changes_nothing(
    make_tenant: Callable[..., Any], admin_client: Client
) -> None:
    """The revert action reverted in its own transaction and wrote the history entry after
    it: a process killed between the two left the tenant uncalibrated with no entry. One
    transaction now: each tenant's revert is kept with its entry or not at all, and the page
    says which were not reverted."""
    from tests.accounts.test_admin import run_action
    from tests.history import history_refused

    tenant, _ = make_tenant("Unrecorded revert", threshold=0.5)
    active = stored_calibration(tenant, threshold=0.61, previous_threshold=0.5)
    active.activate()
    before = switch_state(tenant)
    assert before[0]["id"] == active.pk and before[2:] == (0.61, [], [])
    admin_client.raise_request_exception = False  # a 500 is answered, as in production
    with history_refused():
        response = run_action(admin_client, "tenant", "revert_to_uncalibrated", tenant.pk)
    assert switch_state(tenant) == before  # before: reverted, with no history entry
    assert response.status_code == 200  # before: 500
    assert (
        "Tenant “Unrecorded revert”: not reverted. Nothing was changed" in response.content.decode()
    )
    assert "not calibrated" not in response.content.decode()  # it is: its write failed

    response = run_action(admin_client, "tenant", "revert_to_uncalibrated", tenant.pk)
    assert "Tenant “Unrecorded revert”: uncalibrated, threshold 0.5000" in response.content.decode()
    assert switch_state(tenant) == (
        None,
        None,
        0.5,
        [(active.pk,)],
        ["Reverted to uncalibrated: threshold 0.6100 → 0.5000."],
    )


def test_the_revert_action_names_each_tenant_as_it_is_and_says_what_it_left(
    make_tenant: Callable[..., Any], admin_client: Client
) -> None:
    """The admin's template capitalises each message's first letter: "acme: uncalibrated"
    showed as "Acme: uncalibrated", another tenant's name. A tenant selected that was not
    calibrated was passed over without a word."""
    from tests.accounts.test_admin import run_action

    tenant, _ = make_tenant("acme", threshold=0.5)
    stored_calibration(tenant, threshold=0.61, previous_threshold=0.5).activate()
    plain, _ = make_tenant("zed", threshold=0.4)
    response = run_action(admin_client, "tenant", "revert_to_uncalibrated", tenant.pk, plain.pk)
    said = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert said == [
        ("success", "Tenant “acme”: uncalibrated, threshold 0.5000."),
        ("warning", "Tenant “zed”: not calibrated, nothing reverted."),
    ]
    page = response.content.decode()
    assert "Tenant “acme”: uncalibrated" in page and "Acme" not in page


@pytest.mark.parametrize("digits", [22, 5000])
def test_a_candidate_id_no_candidate_has_is_an_unknown_candidate(
    make_tenant: Callable[..., Any], digits: int
) -> None:
    """A 22-digit id was refused as a candidate no longer in shadow; 5,000 digits were int()-ed
    past Python's 4,300-digit limit: a ValueError, a 500. Both now get the same answer."""
    tenant, _ = make_tenant("long id", threshold=0.5)
    candidate = in_shadow(tenant, threshold=0.61)
    before = switch_state(tenant)
    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    operator = staff("change_tenant")
    operator.raise_request_exception = False
    response = operator.post(url, {"shadow": "promote:" + "9" * digits})
    assert response.status_code == 302
    page = operator.get(response["Location"]).content.decode()
    assert "which the page showed, is no longer in shadow" in page
    assert f"candidate #{candidate.pk} is. Nothing was changed" in page
    assert switch_state(tenant) == before


@pytest.mark.django_db(transaction=True)  # autocommit, as the admin runs: no test transaction
def test_a_candidate_whose_record_is_gone_is_discarded_not_promoted(
    make_tenant: Callable[..., Any], admin_client: Client
) -> None:
    """The shadow names a calibration whose row is gone: promoting it has no maps to apply,
    so nothing changes and the page says to discard it; the discard then clears the shadow,
    with its history entry."""
    tenant, _ = make_tenant("Gone record", threshold=0.5)
    candidate = in_shadow(tenant, threshold=0.61)
    Calibration.objects.filter(pk=candidate.pk).delete()
    before = switch_state(tenant)
    url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
    response = admin_client.post(url, {"shadow": f"promote:{candidate.pk}"}, follow=True)
    assert "The candidate&#x27;s record is gone; discard it instead." in response.content.decode()
    assert switch_state(tenant) == before and before[1]["id"] == candidate.pk

    response = admin_client.post(url, {"shadow": f"discard:{candidate.pk}"}, follow=True)
    assert "Tenant “Gone record”: Discarded shadow candidate #?" in response.content.decode()
    after = switch_state(tenant)
    assert after[:4] == (None, None, 0.5, before[3])
    assert after[4] == [*before[4], after[4][-1]] and after[4][-1].startswith("Discarded")
