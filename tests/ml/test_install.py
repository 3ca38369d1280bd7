"""install_models: checksums enforced, idempotent, and the result loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml.engine import LivenessEngine
from ml.errors import ModelInstallError
from ml.install import MANIFEST, install_models, models_ready
from ml.registry import MODEL_FILES
from tests.ml.conftest import MODEL_SOURCE


def test_install_is_idempotent_and_loadable(tmp_path: Path) -> None:
    dest = tmp_path / "models"
    assert install_models(MODEL_SOURCE, dest) is True
    assert models_ready(dest)
    manifest_before = (dest / MANIFEST).stat().st_mtime_ns
    assert install_models(MODEL_SOURCE, dest) is False
    assert (dest / MANIFEST).stat().st_mtime_ns == manifest_before
    LivenessEngine.load(dest).warm_up()


def _copy_sources(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    for model in MODEL_FILES:
        (source / model.source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MODEL_SOURCE / model.source, source / model.source)
    return source


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path)
    tampered = source / MODEL_FILES[1].source
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelInstallError, match="checksum mismatch"):
        install_models(source, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_missing_model_is_refused(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path)
    (source / MODEL_FILES[0].source).unlink()
    with pytest.raises(ModelInstallError, match="missing"):
        install_models(source, tmp_path / "models")


def test_engine_refuses_an_empty_model_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match="install_models"):
        LivenessEngine.load(tmp_path)
