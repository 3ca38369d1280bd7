"""A compile cache blob or an int8 model changed on disk is never used: OpenVINO loads a blob
without checking it (64 KiB of zeros in one gave other scores on 78 of 79 dev images, nothing
raised), so each compile checks its entry's blobs against the digests recorded when they were
written (ml.compilation), and an int8 engine checks MODEL_DIR/int8 (ml.quantize)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from ml.engine import LivenessEngine
from ml.errors import FaceRefused, ModelInstallError
from ml.install import install_models, installed_faults, sha256_of
from ml.quantize import INT8_DIR, MANIFEST, QUANTIZED, int8_faults, int8_ready

from .conftest import DEV_DATA


@pytest.fixture
def models(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("cache", INT8_DIR))
    return copy


def _scores(engine: LivenessEngine) -> dict[str, float]:
    found = {}
    for path in sorted(DEV_DATA.glob("*/*.*"))[::6]:
        try:
            found[path.name] = engine.check(path.read_bytes(), "fast").p_live
        except FaceRefused:
            continue
    return found


def _loaded(models: Path) -> LivenessEngine:
    engine = LivenessEngine.load(models, eager=["fast"])
    engine.warm_up()
    return engine


def test_a_cache_blob_changed_on_disk_is_rebuilt_not_used(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean = _scores(_loaded(models))  # fills the cache
    assert clean
    blob = max((models / "cache").rglob("*.blob"), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 65536] = bytes(65536)
    os.chmod(blob, 0o640)
    blob.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "ml.compilation"):
        again = _scores(_loaded(models))
    assert again == clean
    assert f"deleting {blob} from the compile cache: it differs" in caplog.text
    assert sha256_of(blob) != hashlib.sha256(data).hexdigest()  # rebuilt in its place
    caplog.clear()
    with caplog.at_level(logging.WARNING, "ml.compilation"):
        _loaded(models)
    assert "compile cache" not in caplog.text  # rebuilt once, recorded, then trusted


def test_a_cache_blob_without_a_recorded_digest_is_deleted(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _loaded(models)
    entry = next(folder for folder in (models / "cache").iterdir() if folder.name != ".locks")
    stranger = entry / "123.blob"
    stranger.write_bytes(b"not written by a compile")
    with caplog.at_level(logging.WARNING, "ml.compilation"):
        _loaded(models)
    assert not stranger.exists()
    assert f"deleting {stranger} from the compile cache: it has no digest" in caplog.text
    assert installed_faults(models) == []


def _int8_by_hand(models: Path, digests: bool = True) -> Path:
    """MODEL_DIR/int8 as bench.quantize --build leaves it (the f32 IR standing in for the
    quantised models: nncf is not a test requirement), digests recorded; ``digests=False``:
    as an earlier release built it, its manifest recording none."""
    dest = models / INT8_DIR
    dest.mkdir()
    names = [f"{n}.{ext}" for n in QUANTIZED for ext in ("xml", "bin")]
    for name in names:
        shutil.copy(models / name, dest / name)
    manifest: dict[str, object] = {
        "nncf": "2.0.0",
        "from": json.loads((models / MANIFEST).read_text()),
        "samples": {name: 4 for name in QUANTIZED},
    }
    if digests:
        manifest["files"] = {name: sha256_of(dest / name) for name in names}
    (dest / MANIFEST).write_text(json.dumps(manifest))
    return dest


def test_an_int8_model_changed_on_disk_is_refused_by_an_int8_engine_alone(
    models: Path, tmp_path: Path
) -> None:
    dest = _int8_by_hand(models)
    assert installed_faults(models) == [] and int8_ready(models)
    weights = dest / "minifasnet_v2.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)
    weights.write_bytes(bytes(data))
    assert int8_faults(models) == [
        f"{INT8_DIR}/minifasnet_v2.bin differs from the digest recorded when it was built"
    ]
    assert not int8_ready(models)
    with pytest.raises(ModelInstallError, match=r"minifasnet_v2\.bin differs.*bench\.quantize"):
        LivenessEngine.load(models, precision="int8", eager=["fast"])
    # the f32 models are intact: nothing to install (no source needed), int8/ left as it is
    assert installed_faults(models) == []
    assert install_models(tmp_path / "no-source", models) is False
    assert weights.read_bytes() == bytes(data)
    assert LivenessEngine.load(models, eager=["fast"]).precision == "f32"


def test_an_int8_folder_built_from_other_f32_models_is_refused_naming_that(
    models: Path,
) -> None:
    """Its files as built, its digests valid, but built from f32 models other than those
    installed (an f32 repair or upgrade on a mounted volume, which keeps int8/): an int8
    engine says so, not that there are no INT8 models."""
    dest = _int8_by_hand(models)
    built = json.loads((dest / MANIFEST).read_text())
    built["from"] = {"other": "f32 models"}
    (dest / MANIFEST).write_text(json.dumps(built))
    assert not int8_ready(models)
    assert int8_faults(models) == [f"{INT8_DIR}/ built from other f32 models than those installed"]
    with pytest.raises(ModelInstallError, match=r"built from other f32 models.*bench\.quantize"):
        LivenessEngine.load(models, precision="int8", eager=["fast"])


def test_an_earlier_releases_int8_folder_is_kept_and_refused_by_an_int8_engine(
    models: Path, tmp_path: Path
) -> None:
    """An int8/ built by a release that recorded no digests: an f32 start installs nothing
    (the container image has no model source) and loads; an int8 engine is refused with the
    command that builds int8/ again, and the folder is kept."""
    dest = _int8_by_hand(models, digests=False)
    assert installed_faults(models) == []
    assert install_models(tmp_path / "no-source", models) is False
    assert LivenessEngine.load(models, eager=["fast"]).precision == "f32"
    assert not int8_ready(models)
    with pytest.raises(ModelInstallError, match=r"no digests.*earlier release.*bench\.quantize"):
        LivenessEngine.load(models, precision="int8", eager=["fast"])
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [MANIFEST] + [f"{n}.{ext}" for n in QUANTIZED for ext in ("xml", "bin")]
    )


def test_an_f32_reinstall_without_its_sources_leaves_int8_in_place(
    models: Path, tmp_path: Path
) -> None:
    """All or nothing: a reinstall that cannot verify its sources removes nothing, int8/
    included (it was removed before the sources were looked at)."""
    dest = _int8_by_hand(models, digests=False)
    (models / "yunet.bin").write_bytes(b"damaged")
    with pytest.raises(ModelInstallError, match="model file missing"):
        install_models(tmp_path / "no-source", models)
    assert (dest / MANIFEST).is_file() and (dest / "yunet.bin").is_file()
    assert not (tmp_path / "models.staging").exists()
