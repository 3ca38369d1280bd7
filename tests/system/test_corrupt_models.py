"""A corrupt installed model is never served (issue 19, item 2). Bytes flipped in
var/models/minifasnet_v2.bin, size kept: install_models did nothing, /status_check said live,
and every check answered 201 with "liveness_score": NaN (not JSON), took a unit and stored
NULL. Now a server on it never reports ready, and bin/entrypoint repairs the file before it
serves (in-process: tests/liveness/test_corrupt_models.py)."""

import math
from pathlib import Path

import pytest
import requests
from django.conf import settings

from ml.install import sha256_of
from tests.ml.corrupt import WEIGHTS, corrupt_copy
from tests.servers.clients import selfie_body
from tests.servers.entrypoint import entrypoint_server
from tests.servers.gunicorn import migrated_env, start

pytestmark = pytest.mark.system

WORKER_BOOT_ERROR = 3  # gunicorn's: the master stops


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
