"""Nobody gets more than their role allows in the admin. A real staff user who may view every
model, and nothing more, runs every admin action and opens every custom admin view through the
test client: each answers 403 and nothing in the database changes. A user given the matching
permission (and only it) still succeeds.

The actions and views are read from the admin site's registry, so a new one is walked too, and
fails the test until it is listed in ACTION_NEEDS or VIEW_NEEDS with the permission it needs."""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin import AdminSite, ModelAdmin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Model
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from accounts.models import HashId, Tenant
from calibration import jobs
from calibration.models import Evaluation
from capture.models import CaptureSession
from guard.adminperms import base_actions
from guard.models import Counter, Refusal
from liveness.models import LivenessCheck
from tests.accounts.test_admin import INLINE_MANAGEMENT
from tests.calibration.test_calibrate import LIVE, SPOOF, make_zip
from tests.conftest import stored_calibration
from tests.console.test_admin_pages import make_evaluation

pytestmark = pytest.mark.django_db

# Our own model admins refuse an action a user may not run with 403; Django's own (users and
# groups) only leave it out of the list and change nothing.
OWN_APPS = {"accounts", "calibration", "capture", "guard", "liveness"}

# Every action of every registered model admin and the permissions it needs beyond viewing;
# None: offered to nobody, not even a superuser.
ACTION_NEEDS: dict[tuple[str, str], list[str] | None] = {
    ("accounts.tenant", "issue_hash_id"): ["accounts.add_hashid"],
    ("accounts.tenant", "reset_quota"): ["accounts.change_tenant"],
    ("accounts.tenant", "revert_to_uncalibrated"): ["accounts.change_tenant"],
    # Deleting a tenant deletes its rows too (Django asks for their delete permissions).
    ("accounts.tenant", "delete_selected"): [
        "accounts.delete_tenant",
        "accounts.delete_hashid",
        "liveness.delete_livenesscheck",
        "capture.delete_capturesession",
        "calibration.delete_evaluation",
    ],
    ("accounts.hashid", "revoke"): ["accounts.change_hashid"],
    ("accounts.hashid", "delete_selected"): ["accounts.delete_hashid"],
    ("calibration.calibration", "delete_selected"): None,
    ("liveness.livenesscheck", "delete_selected"): ["liveness.delete_livenesscheck"],
    ("calibration.evaluation", "delete_selected"): ["calibration.delete_evaluation"],
    ("capture.capturesession", "delete_selected"): ["capture.delete_capturesession"],
    ("guard.counter", "delete_selected"): ["guard.delete_counter"],
    ("guard.refusal", "delete_selected"): ["guard.delete_refusal"],
    ("auth.user", "delete_selected"): ["auth.delete_user"],
    ("auth.group", "delete_selected"): ["auth.delete_group"],
}


@dataclass
class World:
    """One row of every registered model, as a hostile viewer would find them."""

    tenant: Tenant
    hash_id: HashId
    bystander: User
    rows: dict[str, Model]


@pytest.fixture
def world() -> World:
    return make_world()


def make_world() -> World:
    """One row of every registered model (the fixture ``world``)."""
    tenant = Tenant.objects.create(name="Bank", request_limit=100, requests_used=45)
    hash_id = HashId.issue(tenant).record
    calibration = stored_calibration(tenant, bona_fide=30, attacks=30)
    calibration.activate()
    now = timezone.now()
    # a shadow candidate a viewer must not promote or discard
    stored_calibration(tenant, threshold=0.8).shadow(now, now + timedelta(days=1))
    tenant.refresh_from_db()
    bystander = User.objects.create_user("bystander", password="An-0ld-Passw0rd")
    rows: list[Model] = [
        tenant,
        hash_id,
        calibration,
        LivenessCheck.objects.create(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0),
        make_evaluation(tenant=tenant),  # run as the tenant: deleted with it
        CaptureSession.objects.create(
            tenant=tenant, token_digest="0" * 64, expires_at=now + timedelta(hours=1)
        ),
        Counter.objects.create(scope="auth", subject="203.0.113.0/24", bucket=0, hits=3),
        Refusal.objects.create(
            day=now.date(), code="invalid_credentials", status=401, client="203.0.113.0/24", hits=2
        ),
        Group.objects.create(name="operators"),
        bystander,
    ]
    found = {row._meta.label_lower: row for row in rows}
    missing = [
        m._meta.label_lower for m in admin.site._registry if m._meta.label_lower not in found
    ]
    assert missing == [], f"add a row of {missing} to this fixture"
    return World(tenant, hash_id, bystander, found)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table but the sessions (where the admin keeps its messages)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session
    }


_serial = itertools.count()


def staff(*perms: str) -> Client:
    """A logged-in client of a new staff user who may view every registered model, plus
    ``perms`` ("app_label.codename")."""
    user = User.objects.create_user(f"staff{next(_serial)}", is_staff=True)
    views = [(m._meta.app_label, f"view_{m._meta.model_name}") for m in admin.site._registry]
    wanted = views + [tuple(p.split(".")) for p in perms]
    granted = [
        Permission.objects.get(content_type__app_label=app, codename=codename)
        for app, codename in wanted
    ]
    user.user_permissions.set(granted)
    client = Client()
    client.force_login(user)
    return client


def registered() -> list[tuple[type[Model], ModelAdmin[Any]]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


def all_actions() -> list[tuple[str, str]]:
    return [
        (model._meta.label_lower, name)
        for model, model_admin in registered()
        for _, name, _ in base_actions(model_admin)
    ]


def changelist(label: str) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_changelist")


def run_action(client: Client, world: World, label: str, action: str) -> Any:
    """The action on the fixture's row, confirmed ("post": the delete action's second step)."""
    selected = [str(world.rows[label].pk)]
    data = {"action": action, "_selected_action": selected, "post": "yes"}
    return client.post(changelist(label), data)


def test_every_action_is_listed() -> None:
    assert sorted(all_actions()) == sorted(ACTION_NEEDS)


def test_every_action_declares_its_permissions() -> None:
    """An action without ``permissions`` is offered to everyone who may view the list."""
    undeclared = [
        (model._meta.label_lower, name)
        for model, model_admin in registered()
        for func, name, _ in base_actions(model_admin)
        if not getattr(func, "allowed_permissions", None)
    ]
    assert undeclared == []


@pytest.mark.parametrize(("label", "action"), sorted(ACTION_NEEDS))
def test_a_viewer_cannot_run_the_action(world: World, label: str, action: str) -> None:
    viewer = staff()
    page = viewer.get(changelist(label))
    assert page.status_code == 200
    assert f'value="{action}"' not in page.content.decode()  # not offered
    before = snapshot()
    response = run_action(viewer, world, label, action)
    assert snapshot() == before
    if label.split(".")[0] in OWN_APPS:
        assert response.status_code == 403


@pytest.mark.parametrize(("label", "action"), sorted(ACTION_NEEDS))
def test_the_matching_permission_runs_the_action(world: World, label: str, action: str) -> None:
    needs = ACTION_NEEDS[(label, action)]
    if needs is None:
        client = Client()
        client.force_login(User.objects.create_superuser("root"))
        before = snapshot()
        run_action(client, world, label, action)
        assert snapshot() == before
        return
    client = staff(*needs)
    before = snapshot()
    response = run_action(client, world, label, action)
    assert response.status_code in (200, 302)
    assert snapshot() != before


# Custom admin views (beyond Django's add, change, delete, history and list) and what they need
# beyond viewing; None: read only, viewing is enough.
VIEW_NEEDS: dict[str, list[str] | None] = {
    "accounts_tenant_usage": None,
    "accounts_tenant_usage_csv": None,
    "accounts_tenant_calibrate": ["accounts.change_tenant"],
    "accounts_tenant_calibrate_jobs": ["accounts.change_tenant"],
    "accounts_tenant_shadow": ["accounts.change_tenant"],
    "accounts_tenant_revoke": ["accounts.change_hashid"],
    "accounts_tenant_issue": ["accounts.add_hashid"],
    "accounts_tenant_reset_quota": ["accounts.change_tenant"],
    "auth_user_password_change": ["auth.change_user"],
}


def custom_views() -> dict[str, URLPattern]:
    """Every named admin URL that Django's ModelAdmin and AdminSite do not add themselves."""
    found: dict[str, URLPattern] = {}
    for _, model_admin in registered():
        default = {p.name for p in ModelAdmin.get_urls(model_admin)}
        for p in model_admin.get_urls():
            if isinstance(p, URLPattern) and p.name and p.name not in default:
                found[p.name] = p
    probe = AdminSite(name="probe")  # Django's own site with the same models
    probe._registry = admin.site._registry
    default_site = {getattr(p, "name", None) for p in probe.get_urls()}
    for site_url in admin.site.get_urls():
        if isinstance(site_url, URLPattern) and site_url.name and site_url.name not in default_site:
            found[site_url.name] = site_url
    return found


def url_of(name: str, world: World) -> str:
    pattern = custom_views()[name]
    values = {"tenant_id": world.tenant.pk, "hash_id": world.hash_id.pk, "id": world.bystander.pk}
    kwargs = {key: values[key] for key in pattern.pattern.converters}
    return reverse(f"admin:{name}", kwargs=kwargs)


def test_every_custom_view_is_listed() -> None:
    assert sorted(custom_views()) == sorted(VIEW_NEEDS)


@pytest.mark.parametrize("name", sorted(VIEW_NEEDS))
def test_a_viewer_changes_nothing_through_a_custom_view(world: World, name: str) -> None:
    viewer = staff()
    url = url_of(name, world)
    before = snapshot()
    got = viewer.get(url)
    data = {"password1": "N3w-Passw0rd!", "password2": "N3w-Passw0rd!", "shadow": "promote"}
    posted = viewer.post(url, data)
    assert snapshot() == before
    if VIEW_NEEDS[name] is None:
        assert got.status_code == 200
    else:
        assert (got.status_code, posted.status_code) == (403, 403)


@pytest.mark.parametrize("name", sorted(VIEW_NEEDS))
def test_a_custom_view_refuses_before_saying_whether_its_row_exists(
    world: World, name: str
) -> None:
    """A staff user who may not use the view gets the same 403 for a row that exists and for
    one that does not: the usage, calibration and shadow pages looked the tenant up first, so
    anyone on the staff learnt which tenant ids exist (404 for a missing one, 403 else)."""
    nobody = Client()
    nobody.force_login(User.objects.create_user("nobody", is_staff=True))
    clients = [nobody] if VIEW_NEEDS[name] is None else [nobody, staff()]
    pattern = custom_views()[name]
    missing = {"tenant_id": 10**6, "hash_id": world.hash_id.pk, "id": 10**6}
    absent = reverse(f"admin:{name}", kwargs={k: missing[k] for k in pattern.pattern.converters})
    for client in clients:
        for method in (client.get, client.post):
            statuses = {method(url).status_code for url in (url_of(name, world), absent)}
            assert statuses == {403}, (method.__name__, statuses)


def succeeds_calibrating(client: Client, world: World) -> None:
    upload = SimpleUploadedFile("c.zip", make_zip(LIVE, SPOOF), content_type="application/zip")
    before = world.tenant.calibrations.count()
    response = client.post(url_of("accounts_tenant_calibrate", world), {"archive": upload})
    assert response.status_code == 303, response.content.decode()[-2000:]
    assert jobs.run_local_jobs() == 1  # the task worker's part, in this process
    assert world.tenant.calibrations.count() == before + 1


def succeeds_polling_the_jobs(client: Client, world: World) -> None:
    """The calibrate page's poll: read only, but only for who may calibrate (the page's own
    permissions)."""
    response = client.get(url_of("accounts_tenant_calibrate_jobs", world))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


def succeeds_promoting_the_shadow(client: Client, world: World) -> None:
    candidate = stored_calibration(world.tenant, threshold=0.7)
    candidate.shadow(timezone.now(), timezone.now() + timedelta(days=1))
    url = url_of("accounts_tenant_shadow", world)
    assert client.post(url, {"shadow": f"promote:{candidate.pk}"}).status_code == 302
    world.tenant.refresh_from_db()
    assert world.tenant.shadow_calibration is None
    assert (world.tenant.calibration or {}).get("id") == candidate.pk
    assert world.tenant.threshold == 0.7


def succeeds_revoking(client: Client, world: World) -> None:
    assert client.post(url_of("accounts_tenant_revoke", world)).status_code == 302
    world.hash_id.refresh_from_db()
    assert world.hash_id.is_revoked


def succeeds_issuing(client: Client, world: World) -> None:
    response = client.post(url_of("accounts_tenant_issue", world))
    assert response.status_code == 200 and "new-hash-id" in response.content.decode()
    assert world.tenant.hash_ids.count() == 2


def succeeds_resetting(client: Client, world: World) -> None:
    assert client.post(url_of("accounts_tenant_reset_quota", world)).status_code == 302
    world.tenant.refresh_from_db()
    assert world.tenant.requests_used == 0


def succeeds_changing_a_password(client: Client, world: World) -> None:
    data = {"password1": "N3w-Passw0rd!", "password2": "N3w-Passw0rd!"}
    assert client.post(url_of("auth_user_password_change", world), data).status_code == 302
    world.bystander.refresh_from_db()
    assert world.bystander.check_password("N3w-Passw0rd!")


SUCCEEDS: dict[str, Callable[[Client, World], None]] = {
    "accounts_tenant_calibrate": succeeds_calibrating,
    "accounts_tenant_calibrate_jobs": succeeds_polling_the_jobs,
    "accounts_tenant_shadow": succeeds_promoting_the_shadow,
    "accounts_tenant_revoke": succeeds_revoking,
    "accounts_tenant_issue": succeeds_issuing,
    "accounts_tenant_reset_quota": succeeds_resetting,
    "auth_user_password_change": succeeds_changing_a_password,
}


@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("name", sorted(SUCCEEDS))
def test_the_matching_permission_opens_the_custom_view(world: World, name: str) -> None:
    assert sorted(SUCCEEDS) == sorted(k for k, v in VIEW_NEEDS.items() if v)
    needs = VIEW_NEEDS[name] or []
    client = staff(*needs)
    assert client.get(url_of(name, world)).status_code in (200, 405)
    SUCCEEDS[name](client, world)


def test_a_viewer_cannot_save_add_or_delete_anything(world: World) -> None:
    """Django's own views, walked the same way: every model's add, change and delete pages."""
    viewer = staff()
    before = snapshot()
    for model, _ in registered():
        label = model._meta.label_lower
        pk = world.rows[label].pk
        app, name = label.split(".")
        for url in (
            reverse(f"admin:{app}_{name}_add"),
            reverse(f"admin:{app}_{name}_change", args=[pk]),
            reverse(f"admin:{app}_{name}_delete", args=[pk]),
        ):
            assert viewer.post(url, {"post": "yes", "name": "x"}).status_code == 403, url
    assert snapshot() == before


def test_the_revoke_button_is_shown_only_to_who_may_revoke(world: World) -> None:
    url = reverse("admin:accounts_tenant_change", args=[world.tenant.pk])
    assert "revoke-hash-id" not in staff().get(url).content.decode()
    assert "revoke-hash-id" in staff("accounts.change_hashid").get(url).content.decode()


def test_the_calibration_upload_is_linked_only_for_who_may_calibrate(world: World) -> None:
    """A viewer sees the tenant's calibration, not a link to a page that would answer 403."""
    url = reverse("admin:accounts_tenant_change", args=[world.tenant.pk])
    viewed = staff().get(url).content.decode()
    assert 'id="calibration-status"' in viewed and 'id="calibrate-link"' not in viewed
    assert 'id="calibrate-link"' in staff("accounts.change_tenant").get(url).content.decode()


def test_adding_a_tenant_without_add_hashid_issues_none() -> None:
    client = staff("accounts.add_tenant")
    data = {
        "name": "NoKey",
        "is_active": "on",
        "threshold": "0.5",
        "profile": "fast",
        "crop_policy": "judge",
        "challenge": "none",
        "challenge_band": "0.75",
        "hash_ids-TOTAL_FORMS": "0",
        "hash_ids-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("admin:accounts_tenant_add"), data, follow=True)
    assert "your account may not add hash_ids" in response.content.decode()
    assert not HashId.objects.filter(tenant__name="NoKey").exists()


def test_the_capture_demo_needs_add_capturesession(world: World, settings: Any) -> None:
    """The demo opens sessions that spend a tenant's quota: not for every staff user."""
    settings.CAPTURE_DEMO = True
    viewer = staff()
    viewer_opens = viewer.post("/capture/demo", {"tenant": world.tenant.pk, "lang": "en"})
    assert (viewer.get("/capture/demo").status_code, viewer_opens.status_code) == (403, 403)
    assert CaptureSession.objects.count() == 1
    operator = staff("capture.add_capturesession")
    opened = operator.post("/capture/demo", {"tenant": world.tenant.pk, "lang": "en"})
    assert opened.status_code == 200
    assert CaptureSession.objects.count() == 2


def test_the_capture_demo_lists_tenants_only_to_who_may_view_them(
    world: World, settings: Any
) -> None:
    """Its select names every active tenant: with add_capturesession alone, a user who may view
    no tenant read them all there, and opened sessions spending their quota."""
    settings.CAPTURE_DEMO = True
    Tenant.objects.create(name="Hidden Bank")
    opener = User.objects.create_user("opener", is_staff=True)
    opener.user_permissions.set(
        Permission.objects.filter(codename__in=["add_capturesession", "view_capturesession"])
    )
    client = Client()
    client.force_login(opener)
    page = client.get("/capture/demo")
    assert page.status_code == 403 and "Hidden Bank" not in page.content.decode()
    opens = client.post("/capture/demo", {"tenant": world.tenant.pk, "lang": "en"})
    assert opens.status_code == 403 and CaptureSession.objects.count() == 1
    for codename in ("view_tenant", "change_tenant"):
        opener.user_permissions.add(Permission.objects.get(codename=codename))
        opener = User.objects.get(pk=opener.pk)  # its permissions read again
        client.force_login(opener)
        assert "Hidden Bank" in client.get("/capture/demo").content.decode()
        opener.user_permissions.remove(Permission.objects.get(codename=codename))


def test_a_capture_verdict_needs_view_capturesession(world: World, settings: Any) -> None:
    settings.CAPTURE_DEMO = True
    session = world.rows["capture.capturesession"]
    url = f"/capture/demo/{session.pk}"
    client = Client()
    client.force_login(User.objects.create_user("nobody", is_staff=True))
    assert client.get(url).status_code == 403
    assert staff().get(url).status_code == 200


def test_a_capture_verdict_opens_to_whoever_may_change_capture_sessions(
    world: World, settings: Any
) -> None:
    """The console's rule (guard.viewing.user_may_view, Django's for a list): the change
    permission lets one view. ``change_capturesession`` alone opened the session's admin page
    yet got 403 on its verdict in the demo."""
    settings.CAPTURE_DEMO = True
    session = world.rows["capture.capturesession"]
    changer = only("capture.change_capturesession")
    admin_page = reverse("admin:capture_capturesession_change", args=[session.pk])
    assert changer.get(admin_page).status_code == 200
    assert changer.get(f"/capture/demo/{session.pk}").status_code == 200


def test_the_index_overview_shows_only_what_the_user_may_view(world: World) -> None:
    """Today's checks, refusals (with client address buckets) and the tenants near their limit
    are rows of three models: a staff user sees each part only with its view permission."""
    world.tenant.requests_used = 95
    world.tenant.save()
    nobody = Client()
    nobody.force_login(User.objects.create_user("nobody", is_staff=True))
    bare = nobody.get(reverse("admin:index")).content.decode()
    assert "203.0.113.0/24" not in bare and "Bank" not in bare and 'id="overview"' not in bare
    viewer = staff().get(reverse("admin:index")).content.decode()
    near = viewer.split('id="overview-near-limit"')[1].split("</td>")[0]
    assert "Bank" in near and "<code>203.0.113.0/24</code> (2)" in viewer
    assert 'id="overview-checks"' in viewer


@pytest.mark.parametrize(
    ("perm", "part"),
    [
        ("accounts.change_tenant", "overview-near-limit"),
        ("liveness.change_livenesscheck", "overview-checks"),
        ("guard.change_refusal", "overview-refusals"),
        ("calibration.change_evaluation", "latest-evaluations"),
    ],
)
def test_the_index_shows_a_part_to_whoever_its_list_opens_to(
    world: World, perm: str, part: str
) -> None:
    """Django's admin lets a change permission view (``has_view_permission``): a user holding
    ``change_tenant`` alone opened and edited every tenant, yet the index checked
    ``view_tenant`` and showed them no tenant at or near its limit."""
    world.tenant.requests_used = 95
    world.tenant.save()
    client = only(perm)
    model = apps.get_model(perm.split(".")[0], perm.split("_", 1)[1])
    assert client.get(changelist(model._meta.label_lower)).status_code == 200
    page = client.get(reverse("admin:index")).content.decode()
    assert f'id="{part}"' in page
    if part == "overview-near-limit":
        assert "Bank" in page.split(f'id="{part}"')[1].split("</td>")[0]


def test_issuing_needs_a_tenant_the_user_may_view(world: World) -> None:
    """``add_hashid`` alone opens no tenant page and no list, so it issued through the button's
    address for any tenant id typed in: a new credential of a tenant the user may not see,
    with its name on the page."""
    user = User.objects.create_user("issuer", is_staff=True)
    user.user_permissions.set([Permission.objects.get(codename="add_hashid")])
    client = Client()
    client.force_login(user)
    before = snapshot()
    response = client.post(url_of("accounts_tenant_issue", world))
    assert response.status_code == 403
    assert world.tenant.name not in response.content.decode()
    assert snapshot() == before
    user.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    succeeds_issuing(client, world)


@pytest.mark.parametrize(
    "label", ["liveness.livenesscheck", "calibration.calibration", "accounts.hashid"]
)
def test_a_list_filter_names_only_the_tenants_of_its_rows(world: World, label: str) -> None:
    """A user who may view checks, calibrations or hash_ids but not tenants saw every tenant's
    name in the list's tenant filter, those without a row there too."""
    hidden = Tenant.objects.create(name="Hidden Bank")
    app, codename = label.split(".")[0], f"view_{label.split('.')[1]}"
    user = User.objects.create_user(f"viewer-of-{codename}", is_staff=True)
    user.user_permissions.set(
        [Permission.objects.get(content_type__app_label=app, codename=codename)]
    )
    client = Client()
    client.force_login(user)
    page = client.get(changelist(label)).content.decode()
    assert world.tenant.name in page  # the tenant of the fixture's row
    assert hidden.name not in page


def only(*perms: str) -> Client:
    """A logged-in client of a new staff user holding ``perms`` and nothing else."""
    user = User.objects.create_user(f"only{next(_serial)}", is_staff=True)
    user.user_permissions.set(
        [
            Permission.objects.get(
                content_type__app_label=p.split(".")[0], codename=p.split(".")[1]
            )
            for p in perms
        ]
    )
    client = Client()
    client.force_login(user)
    return client


CALIBRATION_MARKS = ('id="calibration-status"', 'id="shadow-status"', 'id="shadow-promote"')


def test_the_tenant_page_shows_calibrations_only_to_who_may_view_them(world: World) -> None:
    """The tenant page showed the active calibration (its maps and figures), the shadow
    candidate and its flip counts to anyone who may view or change tenants; the upload page and
    the shadow's buttons answered them too."""
    url = reverse("admin:accounts_tenant_change", args=[world.tenant.pk])
    editor = only("accounts.change_tenant")
    page = editor.get(url).content.decode()
    assert page.count('name="name"') == 1  # the tenant's own form is there
    assert [mark for mark in (*CALIBRATION_MARKS, "calibrate-link") if mark in page] == []
    tenants = editor.get(changelist("accounts.tenant")).content.decode()
    assert "column-calibrated" not in tenants and "revert_to_uncalibrated" not in tenants
    before = snapshot()
    assert editor.get(url_of("accounts_tenant_calibrate", world)).status_code == 403
    shadow = url_of("accounts_tenant_shadow", world)
    assert editor.post(shadow, {"shadow": "promote"}).status_code == 403
    assert snapshot() == before
    reader = only("accounts.view_tenant", "calibration.view_calibration")
    page = reader.get(url).content.decode()
    assert [mark for mark in CALIBRATION_MARKS if mark in page] == list(CALIBRATION_MARKS[:2])
    assert 'id="shadow-flips"' not in page and "may view liveness checks" in page
    full = only(
        "accounts.view_tenant", "calibration.view_calibration", "liveness.view_livenesscheck"
    )
    assert 'id="shadow-flips"' in full.get(url).content.decode()
    assert "column-calibrated" in full.get(changelist("accounts.tenant")).content.decode()


def test_promoting_without_view_livenesscheck_says_no_flip_counts(world: World) -> None:
    client = only("accounts.change_tenant", "calibration.view_calibration")
    url = url_of("accounts_tenant_shadow", world)
    seen = (world.tenant.shadow_calibration or {}).get("id")
    page = client.post(url, {"shadow": f"discard:{seen}"}, follow=True).content.decode()
    assert "Discarded shadow candidate" in page and "checks in shadow" not in page
    world.tenant.refresh_from_db()
    assert world.tenant.shadow_calibration is None


def test_the_usage_page_needs_the_checks_and_refusals_it_counts(world: World) -> None:
    """Its live, spoof and 422 counts are the tenant's check records, its 401 and 429 counts
    its refusals: a user who may view tenants but neither of those read both there."""
    tenant_page = reverse("admin:accounts_tenant_change", args=[world.tenant.pk])
    pages = [url_of(name, world) for name in ("accounts_tenant_usage", "accounts_tenant_usage_csv")]
    viewer = only("accounts.view_tenant", "liveness.view_livenesscheck")
    assert [viewer.get(page).status_code for page in pages] == [403, 403]
    assert 'id="usage-link"' not in viewer.get(tenant_page).content.decode()
    assert ">chart</a>" not in viewer.get(changelist("accounts.tenant")).content.decode()
    reader = only("accounts.view_tenant", "liveness.view_livenesscheck", "guard.view_refusal")
    assert [reader.get(page).status_code for page in pages] == [200, 200]
    assert 'id="usage-link"' in reader.get(tenant_page).content.decode()
    assert ">chart</a>" in reader.get(changelist("accounts.tenant")).content.decode()


def test_the_tenant_history_shows_calibrations_and_flips_only_to_who_may_view_them(
    world: World,
) -> None:
    """The tenant's history (and the index's recent changes) says a calibration's id and
    thresholds, a shadow candidate's flip counts (counted from the check records) and the
    evaluation a target APCER was read from only to those the tenant page shows them to, not
    to anyone who may view the tenant."""
    evaluation = Evaluation.objects.get(pk=world.rows["calibration.evaluation"].pk)
    operator = only(
        "accounts.change_tenant",
        "calibration.view_calibration",
        "liveness.view_livenesscheck",
        "calibration.view_evaluation",
    )
    shadow = url_of("accounts_tenant_shadow", world)
    seen = (world.tenant.shadow_calibration or {}).get("id")
    assert operator.post(shadow, {"shadow": f"promote:{seen}"}).status_code == 302
    run_action(operator, world, "accounts.tenant", "revert_to_uncalibrated")  # for the target
    data = {"name": "Bank", "is_active": "on", "request_limit": "100", "threshold": "0.5"}
    data |= {"profile": evaluation.profile, "crop_policy": "judge", "challenge": "none"}
    data |= {"challenge_band": "0.75", "target_apcer": "25", **INLINE_MANAGEMENT}
    change = reverse("admin:accounts_tenant_change", args=[world.tenant.pk])
    saved = operator.post(change, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    history = reverse("admin:accounts_tenant_history", args=[world.tenant.pk])
    secrets = ("checks in shadow", "Reverted to uncalibrated", f"evaluation #{evaluation.pk}")

    def read(client: Client) -> list[str]:
        pages = client.get(history).content.decode() + client.get("/admin/").content.decode()
        return [secret for secret in secrets if secret in pages]

    assert read(operator) == list(secrets)
    assert read(only("accounts.view_tenant")) == []
    assert read(only("accounts.view_tenant", "calibration.view_calibration")) == [secrets[1]]
    checks = only("accounts.view_tenant", "liveness.view_livenesscheck")
    assert read(checks) == []
    assert "Calibration changed" in checks.get(history).content.decode()


def test_the_tenant_history_shows_hash_id_prefixes_only_to_who_may_view_them(
    world: World,
) -> None:
    """A hash_id issued, revoked or deleted is in the tenant's history by its prefix; the
    history and the index's recent changes showed that prefix to anyone who may view the
    tenant, though the hash_ids' list (403) and the tenant page show hash_ids only to who may
    view them. Without ``view_hashid`` (or ``change_hashid``) the entry says only that
    hash_ids changed, as a calibration's does, and the tenant list has no hash_id column."""
    operator = only(
        "accounts.view_tenant",
        "accounts.add_hashid",
        "accounts.change_hashid",
        "accounts.delete_hashid",
    )
    assert operator.post(url_of("accounts_tenant_issue", world)).status_code == 200
    assert operator.post(url_of("accounts_tenant_revoke", world)).status_code == 302
    issued = world.tenant.hash_ids.exclude(pk=world.hash_id.pk).get()
    deleted = reverse("admin:accounts_hashid_delete", args=[issued.pk])
    assert operator.post(deleted, {"post": "yes"}).status_code == 302
    history = reverse("admin:accounts_tenant_history", args=[world.tenant.pk])
    entries = (
        f"Issued hash_id {issued.prefix}…",
        f"Revoked hash_id {world.hash_id.prefix}…",
        f"Deleted hash_id {issued.prefix}…",
    )

    def read(client: Client) -> list[str]:
        pages = client.get(history).content.decode() + client.get("/admin/").content.decode()
        return [entry for entry in entries if entry in pages]

    def column(client: Client) -> bool:
        page = client.get(changelist("accounts.tenant")).content.decode()
        return "column-active_hash_ids" in page

    assert read(operator) == list(entries) and column(operator)
    viewer = only("accounts.view_tenant")
    assert viewer.get(changelist("accounts.hashid")).status_code == 403
    tenant_page = reverse("admin:accounts_tenant_change", args=[world.tenant.pk])
    assert world.hash_id.prefix not in viewer.get(tenant_page).content.decode()
    assert read(viewer) == []
    assert "Hash_ids changed" in viewer.get(history).content.decode()
    assert not column(viewer)
    reader = only("accounts.view_tenant", "accounts.view_hashid")
    assert read(reader) == list(entries) and column(reader)
