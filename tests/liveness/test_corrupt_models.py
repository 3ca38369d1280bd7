"""A corrupt installed model is never served (issue 19, item 2). Bytes flipped in
var/models/minifasnet_v2.bin, size kept: install_models did nothing, /status_check said live,
and every check answered 201 with "liveness_score": NaN (not JSON), took a unit and stored
NULL. Now install_models rebuilds the file, and a NaN from a model is answered 503 with
nothing spent or stored (a server on it never reports ready:
tests/system/test_corrupt_models.py)."""

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from liveness import runtime
from liveness.answers import NOT_READY
from liveness.models import LivenessCheck
from ml.engine import LivenessEngine
from ml.install import sha256_of
from tests.conftest import LIVE_JPG, Post, data_uri
from tests.ml.corrupt import WEIGHTS, corrupt_copy


def test_a_nan_from_a_model_is_never_an_answer_a_unit_or_a_record(
    make_tenant: Any, post_liveness: Post, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real engine on a model broken before its digest was recorded (what the digests
    cannot catch), not warmed (warm-up would refuse it): its NaN gives 503, as JSON."""
    copy = corrupt_copy(settings.MODEL_DIR, tmp_path / "models", record_digest=True)
    monkeypatch.setattr(runtime._holder, "_engine", LivenessEngine.load(copy))
    tenant, secret = make_tenant("nan", request_limit=5)
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert response.status_code == 503, response.content
    assert json.loads(response.content) == {"error": NOT_READY}
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    assert not LivenessCheck.objects.filter(tenant=tenant).exists()


def test_install_models_repairs_a_corrupt_installed_file(tmp_path: Path) -> None:
    copy = corrupt_copy(settings.MODEL_DIR, tmp_path / "models")
    out = io.StringIO()
    call_command("install_models", dest=copy, stdout=out)
    assert out.getvalue().startswith("Models installed in")  # not "already up to date"
    assert sha256_of(copy / WEIGHTS) == sha256_of(settings.MODEL_DIR / WEIGHTS)
