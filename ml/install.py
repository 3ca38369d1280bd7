"""Copy the registry's model files (``ml.registry``) from a source directory, verify them, and
convert them to OpenVINO IR.

The IR (and a manifest of what it was built from) lives in ``MODEL_DIR``; nothing here is
committed. Re-running with unchanged inputs does nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import openvino as ov

from ml.errors import ModelInstallError
from ml.registry import MODEL_FILES, ModelSpec

MANIFEST = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_manifest() -> dict[str, object]:
    return {
        "openvino": ov.get_version(),
        "models": {
            m.ir: {"source": m.source, "sha256": m.sha256, "prepare": m.prepare_step}
            for m in MODEL_FILES
        },
    }


def models_ready(dest: Path) -> bool:
    """True when ``dest`` holds IR built from the expected files by this OpenVINO version."""
    manifest = dest / MANIFEST
    if not manifest.is_file():
        return False
    try:
        current = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    files_there = all(
        (dest / f"{m.ir}.{ext}").is_file() for m in MODEL_FILES for ext in ("xml", "bin")
    )
    return files_there and current == _expected_manifest()


def _verified_source(source: Path, model: ModelSpec) -> Path:
    path = source / model.source
    if not path.is_file():
        raise ModelInstallError(f"model file missing: {path}")
    actual = sha256_of(path)
    if actual != model.sha256:
        raise ModelInstallError(
            f"checksum mismatch for {path}: expected {model.sha256}, got {actual}; refusing it"
        )
    return path


def _convert(path: Path, model: ModelSpec, dest: Path) -> None:
    network = ov.Core().read_model(str(path))
    if model.prepare is not None:
        network = model.prepare(network)
    ov.save_model(network, str(dest / f"{model.ir}.xml"), compress_to_fp16=False)


def install_models(source: Path, dest: Path) -> bool:
    """Verify every source file, then (re)build the IR. Returns False when already current."""
    source, dest = Path(source), Path(dest)
    if models_ready(dest):
        return False
    verified = [(m, _verified_source(source, m)) for m in MODEL_FILES]  # all or nothing
    staging = dest.with_name(dest.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for model, path in verified:
        _convert(path, model, staging)
    (staging / MANIFEST).write_text(json.dumps(_expected_manifest(), indent=2, sort_keys=True))
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)  # readers never see a half-built directory
    return True
