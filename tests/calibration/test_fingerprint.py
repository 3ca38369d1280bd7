"""A tenant calibration maps one model set's fused logits: after an upgrade that ships other
model files, preparation or fusion (ml.profiles.fingerprint changes), it is not applied, as one
of another profile is not. The upgrade is simulated by changing the declared data the
fingerprint reads (ml.registry, ml.profiles, a model module's constants), never the engine."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from functools import partial
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import Tenant
from calibration.models import Calibration
from liveness.models import LivenessCheck
from ml import hyperfas, profiles, registry, yunet
from tests.calibration.test_calibrate import LIVE, SPOOF, calibrate, linked
from tests.calibration.test_shadow import in_shadow, tenant_page
from tests.conftest import Post, data_uri, stored_calibration
from tests.servers.processes import manage

SAID = "Not applied: it was fitted on other models: calibrate again"
OLD = "0123456789abcdef"  # the fingerprint of the models before the upgrade
# Every live image scores near 1 under this map: far from any uncalibrated score.
RAISED = {"frame": {"a": 1.0, "b": 6.0}, "crop": {"a": 1.0, "b": 6.0}}


@pytest.fixture
def fresh_fingerprints() -> Iterator[None]:
    """Fingerprints are cached per profile: computed again after each change, and after the
    change is undone (pytest's monkeypatch undoes it only after this fixture ends)."""
    profiles.fingerprint.cache_clear()
    yield
    profiles.fingerprint.cache_clear()


def new_file(name: str) -> Callable[[pytest.MonkeyPatch], None]:
    def change(patch: pytest.MonkeyPatch) -> None:
        spec = dataclasses.replace(registry.CLASSIFIERS[name], sha256="0" * 64)
        patch.setitem(registry.CLASSIFIERS, name, spec)

    return change


@pytest.fixture
def upgraded() -> Iterator[None]:
    """Another MiniFASNetV2 file shipped (its expected sha256 in the registry)."""
    with pytest.MonkeyPatch.context() as patch:
        new_file("minifasnet_v2")(patch)
        profiles.fingerprint.cache_clear()
        yield
    profiles.fingerprint.cache_clear()


def reweighed(patch: pytest.MonkeyPatch) -> None:
    fast = profiles.PROFILES["fast"]
    patch.setitem(profiles.PROFILES, "fast", dataclasses.replace(fast, crop=fast.frame))


def prepared(patch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(registry.CLASSIFIERS["hyperfas"], prepare=registry.u8_input)
    patch.setitem(registry.CLASSIFIERS, "hyperfas", spec)


def bf16(patch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(registry.CLASSIFIERS["hyperfas"], precision="bf16")
    patch.setitem(registry.CLASSIFIERS, "hyperfas", spec)


def rescaled(patch: pytest.MonkeyPatch) -> None:
    spec = registry.CLASSIFIERS["minifasnet_v1se"]
    built = partial(spec.build.func, scale=3.0)  # type: ignore[union-attr]  # the spec's partial
    patch.setitem(registry.CLASSIFIERS, spec.ir, dataclasses.replace(spec, build=built))


CHANGES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "model file": new_file("hyperfas"),
    "detector file": lambda p: p.setattr(
        registry, "DETECTOR", dataclasses.replace(registry.DETECTOR, sha256="0" * 64)
    ),
    "crop weights": reweighed,
    "preparation": prepared,
    "precision hint": bf16,
    "MiniFASNet crop scale": rescaled,
    "HyperFAS crop scale": lambda p: p.setattr(hyperfas, "SCALE", 1.3),
    "detector input sizes": lambda p: p.setattr(yunet, "INPUT_SHAPES", ((320, 320),)),
    "logit clip": lambda p: p.setattr(profiles, "EPS", 1e-4),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_each_declared_input_of_the_fused_logit_changes_the_fingerprint(
    change: str, monkeypatch: pytest.MonkeyPatch, fresh_fingerprints: None
) -> None:
    before = profiles.fingerprint("fast")
    CHANGES[change](monkeypatch)
    profiles.fingerprint.cache_clear()
    assert profiles.fingerprint("fast") != before


def test_a_model_of_another_profile_leaves_the_fingerprint_as_it_was(
    monkeypatch: pytest.MonkeyPatch, fresh_fingerprints: None
) -> None:
    fast, thorough = profiles.fingerprint("fast"), profiles.fingerprint("thorough")
    new_file("dtn")(monkeypatch)
    profiles.fingerprint.cache_clear()
    assert profiles.fingerprint("fast") == fast and profiles.fingerprint("thorough") != thorough


def score_of(post_liveness: Post, secret: str, path: Path = LIVE[0]) -> dict[str, Any]:
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(path)})
    assert response.status_code == 201, response.content
    return dict(response.json()["liveness_result"])


def test_after_an_upgrade_liveness_answers_with_the_shipped_map(
    make_tenant: Callable[..., Any], post_liveness: Post, request: pytest.FixtureRequest
) -> None:
    """The threshold the calibration set stands, as after a change of profile."""
    calibrated, secret = make_tenant("calibrated")
    _, plain = make_tenant("plain")
    stored_calibration(calibrated, params=RAISED, threshold=0.7).activate()
    before = score_of(post_liveness, secret)
    assert before["liveness_score"] > score_of(post_liveness, plain)["liveness_score"]

    request.getfixturevalue("upgraded")
    after, uncalibrated = score_of(post_liveness, secret), score_of(post_liveness, plain)
    assert after["liveness_score"] == uncalibrated["liveness_score"]
    assert after["is_live"] == (after["liveness_score"] >= 0.7)
    assert Tenant.objects.get(pk=calibrated.pk).threshold == 0.7


def test_after_an_upgrade_the_shadow_candidate_records_nothing(
    make_tenant: Callable[..., Any], post_liveness: Post, request: pytest.FixtureRequest
) -> None:
    tenant, secret = make_tenant("shadowed")
    candidate = in_shadow(tenant)
    score_of(post_liveness, secret)
    assert LivenessCheck.objects.get(tenant=tenant).shadow_is_live is not None

    request.getfixturevalue("upgraded")
    assert candidate.fingerprint != profiles.fingerprint("fast")
    LivenessCheck.objects.all().delete()
    score_of(post_liveness, secret)
    check = LivenessCheck.objects.get(tenant=tenant)
    assert (check.shadow_score, check.shadow_is_live) == (None, None)


def test_the_tenant_page_says_both_were_fitted_on_other_models(
    make_tenant: Callable[..., Any], admin_client: Client
) -> None:
    tenant, _ = make_tenant("paged")
    stored_calibration(tenant, params=RAISED, fingerprint=OLD).activate()
    in_shadow(tenant)
    tenant.refresh_from_db()
    tenant.shadow_calibration["fingerprint"] = OLD
    tenant.save()
    page = tenant_page(admin_client, tenant)
    assert f"{SAID}, or revert." in page
    assert f"{SAID}; no check records its verdict." in page
    listed = admin_client.get("/admin/accounts/tenant/").content.decode()
    assert '<td class="field-calibrated"><img src="/static/admin/img/icon-no.svg"' in listed


def test_calibrate_says_so_and_stores_the_fingerprint_of_now(
    make_tenant: Callable[..., Any], tmp_path: Path, upgraded: None
) -> None:
    tenant, _ = make_tenant("again")
    old = stored_calibration(tenant, params=RAISED, fingerprint=OLD)
    old.activate()
    folder = linked(tmp_path, LIVE, SPOOF)
    out, _ = calibrate("again", str(folder), "--dry-run")
    assert f"calibration #{old.pk} of again: {SAID} (the shipped maps score)" in out
    err = StringIO()
    call_command("evaluate", str(folder), "--tenant", "again", "--no-save", stderr=err)
    assert f"warning: calibration #{old.pk} of again: {SAID} (the shipped maps score)" in (
        err.getvalue().splitlines()
    )

    calibrate("again", str(folder))
    tenant.refresh_from_db()
    now = profiles.fingerprint("fast")
    stored = Calibration.objects.first()
    assert stored is not None
    assert stored.fingerprint == now == tenant.calibration["fingerprint"]
    assert tenant.maps() is not None


FILL = """
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
old = MigrationExecutor(connection).loader.project_state(
    [("calibration", "0004_evaluation_folder_without_controls"),
     ("accounts", "0011_tenant_challenge_band")]
).apps
Tenant = old.get_model("accounts", "Tenant")
Calibration = old.get_model("calibration", "Calibration")
t = Tenant.objects.create(name="old")
c = Calibration.objects.create(tenant=t, created_by="op", origin="command", profile="fast",
    params={"a": 1.5, "b": -0.2}, threshold=0.61, previous_threshold=0.5, bona_fide=9,
    attacks=8, figures={})
t.calibration = {"id": c.pk, "a": 1.5, "b": -0.2, "profile": "fast"}
t.shadow_calibration = {"id": c.pk, "profile": "thorough", "maps": {}, "threshold": 0.6,
    "since": 0, "until": 1}
t.save()
Tenant.objects.create(name="plain")
"""

# A later release whose fast logit is another (its clip, as the audit simulated one), run on a
# database from before 0005: the migration runs in that release's process.
LATER_RELEASE = """
from django.core.management import call_command
from ml import profiles
before = profiles.fingerprint("fast")
profiles.EPS = 2e-3
profiles.fingerprint.cache_clear()
assert profiles.fingerprint("fast") != before
call_command("migrate", verbosity=0)
"""

CHECK = """
from accounts.models import Tenant
from calibration.models import Calibration
from ml.profiles import fingerprint
t = Tenant.objects.get(name="old")
print(Calibration.objects.get().fingerprint, t.calibration["fingerprint"],
      t.shadow_calibration["fingerprint"])
print((t.maps() is not None) == (fingerprint("fast") == t.calibration["fingerprint"]))
print(Tenant.objects.get(name="plain").calibration)
"""

# ml.profiles.fingerprint of fast and thorough with the code of the commit that added
# calibration 0005 (0a2d7bce): the models every calibration before it was fitted on.
FAST_AT_0005, THOROUGH_AT_0005 = "11c78a91cd2c261d", "d910b22ce34ff4c1"


@pytest.mark.slow  # four manage.py processes
def test_migrating_forward_stamps_existing_calibrations_with_the_models_of_then(
    tmp_path: Path,
) -> None:
    """Stamped with the fingerprints frozen in the migration, whatever the code that runs it:
    it imported the live ``fingerprint``, so a later release that changes the fast profile's
    models stamped the old calibrations as fitted on its own, and applied them to a logit they
    were not fitted on. Applied while the models are those of then (today's are)."""
    env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "migrate", "calibration", "0004", "--noinput", "-v0")
    manage(env, "shell", "-c", FILL)
    manage(env, "shell", "-c", LATER_RELEASE)
    assert manage(env, "shell", "-c", CHECK).splitlines()[-3:] == [
        f"{FAST_AT_0005} {FAST_AT_0005} {THOROUGH_AT_0005}",
        "True",
        "None",
    ]
