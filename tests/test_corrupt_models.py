"""A corrupt installed model is never served (issue 19, item 2). Bytes flipped in
var/models/minifasnet_v2.bin, size kept: install_models did nothing, /status_check said live,
and every check answered 201 with "liveness_score": NaN (not JSON), took a unit and stored
NULL. Now install_models rebuilds the file, a server on it never reports ready, and a NaN
from a model is answered 503 with nothing spent or stored."""

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.core.management import call_command

from liveness import runtime
from liveness.answers import NOT_READY
from liveness.models import LivenessCheck
from ml.engine import LivenessEngine
from ml.install import sha256_of
from tests.conftest import LIVE_JPG, Post, data_uri
from tests.ml.corrupt import WEIGHTS, corrupt_copy
from tests.servers.clients import selfie_body
from tests.servers.entrypoint import entrypoint_server
from tests.servers.gunicorn import migrated_env, start

WORKER_BOOT_ERROR = 3  # gunicorn's: the master stops


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


@pytest.mark.parametrize("record_digest", [False, True], ids=["changed", "broken-before"])
def test_a_server_on_a_corrupt_model_never_reports_ready(
    tmp_path: Path, record_digest: bool
) -> None:
    """A weights file changed since install (its digest differs), or broken before install
    (its NaN fails warm-up): no worker ever answers, the master stops with the boot error."""
    models = corrupt_copy(settings.MODEL_DIR, tmp_path / "models", record_digest)
    env = migrated_env(tmp_path, 2, MODEL_DIR=str(models), LOG_FORMAT="plain")
    server = start(env, tmp_path)
    answers, code = server.answers_until_exit(
        lambda: requests.get(f"{server.base}/status_check", timeout=(10, 30))
    )
    text = server.log.read_text()
    assert code == WORKER_BOOT_ERROR, text[-3000:]
    assert 200 not in answers
    why = "gave a non-finite score" if record_digest else f"{WEIGHTS} differs from the digest"
    assert why in text


def test_the_entrypoint_repairs_a_corrupt_model_then_serves_real_scores(tmp_path: Path) -> None:
    models = corrupt_copy(settings.MODEL_DIR, tmp_path / "models")
    with entrypoint_server(tmp_path, MODEL_DIR=str(models)) as served:
        _, secret = served.new_tenant(limit=3)
        reply = requests.post(f"{served.base}/liveness", data=selfie_body(secret), timeout=60)
        assert reply.status_code == 201, reply.text
        assert math.isfinite(reply.json()["liveness_result"]["liveness_score"])
    assert sha256_of(models / WEIGHTS) == sha256_of(settings.MODEL_DIR / WEIGHTS)
