"""Copy the model files from a source directory, verify them, and convert them to OpenVINO IR.

The IR (and a manifest of what it was built from) lives in ``MODEL_DIR``; nothing here is
committed. Re-running with unchanged inputs does nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import openvino as ov
from openvino.preprocess import PrePostProcessor

from ml.errors import ModelInstallError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelFile:
    name: str  # the IR base name in MODEL_DIR
    source: str  # path relative to the source directory
    sha256: str
    prepare: str = ""  # a step of PREPARE applied to the graph before it is saved


# Checksums from shared/models/NOTICE.md.
MODEL_FILES: tuple[ModelFile, ...] = (
    ModelFile(
        "yunet",
        "yunet/face_detection_yunet_2023mar.onnx",
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    ),
    ModelFile(
        "minifasnet_v2",
        "minifasnet/MiniFASNetV2.onnx",
        "4eed38f0bde33c9b805942a5f25e42ce1161e2bda545254be622be957727794e",
    ),
    ModelFile(
        "minifasnet_v1se",
        "minifasnet/MiniFASNetV1SE.onnx",
        "d819a69bac6b9ade2a0f4d9b60b618e1260f7bf3ba1fddff6c5d82131cb1083f",
    ),
    ModelFile(
        "dtn",
        "dtn/FaceAntiSpoofing.tflite",
        "a980757d55e2835aff69f2fa9b04914e21d426dd8a43588c2982d50e8038ec02",
        prepare="u8_input",
    ),
    ModelFile(
        "hyperfas",
        "hyperfas/fas.onnx",
        "8db4e290e47eb9525d9df286d27e75cade314bee35543ad978f9aee42563783a",
    ),
)


def _u8_input(model: ov.Model) -> ov.Model:
    """Take the uint8 crop: the cast to float and the /255 run inside the graph."""
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8)
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
    return ppp.build()


PREPARE = {"u8_input": _u8_input}


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
            m.name: {"source": m.source, "sha256": m.sha256, "prepare": m.prepare}
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
        (dest / f"{m.name}.{ext}").is_file() for m in MODEL_FILES for ext in ("xml", "bin")
    )
    return files_there and current == _expected_manifest()


def _verified_source(source: Path, model: ModelFile) -> Path:
    path = source / model.source
    if not path.is_file():
        raise ModelInstallError(f"model file missing: {path}")
    actual = sha256_of(path)
    if actual != model.sha256:
        raise ModelInstallError(
            f"checksum mismatch for {path}: expected {model.sha256}, got {actual}; refusing it"
        )
    return path


def _convert(path: Path, model: ModelFile, dest: Path) -> None:
    network = ov.Core().read_model(str(path))
    if model.prepare:
        network = PREPARE[model.prepare](network)
    ov.save_model(network, str(dest / f"{model.name}.xml"), compress_to_fp16=False)


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
