"""INT8 variants of the models (NNCF post-training quantisation), built from the installed
f32 IR into ``MODEL_DIR/int8``; never committed, and only built on request
(``python -m bench.quantize --build``, which needs ``requirements-quantize.txt``).

Calibration inputs are what each model sees in the pipeline: the detector's letterboxed
320 px input, each classifier's crop of a detected face, taken from the images given (dev
images and variants generated from them: mirrored, darker, brighter).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import cv2
import numpy as np
import openvino as ov

from ml.classifier import Box
from ml.compilation import digest_faults, sha256_of
from ml.yunet import int_box, largest

if TYPE_CHECKING:  # ml.engine imports this module
    from ml.engine import LivenessEngine

INT8_DIR = "int8"
QUANTIZED = ("yunet", "minifasnet_v2", "minifasnet_v1se", "hyperfas")
DETECTOR_HW = (320, 320)  # calibration shape; the quantised IR is reshaped per input shape
MANIFEST = "manifest.json"


def variants(image: np.ndarray) -> list[np.ndarray]:
    """The image and generated variants of it: mirrored, darker, brighter."""
    return [
        image,
        cv2.flip(image, 1),
        cv2.convertScaleAbs(image, alpha=0.7),
        cv2.convertScaleAbs(image, alpha=1.25, beta=10),
    ]


@runtime_checkable
class Preprocessing(Protocol):
    """A classifier whose network input can be had apart from its inference: every quantised
    one (MiniFASNet, HyperFAS); ``LivenessModel`` does not promise it."""

    def preprocess(self, image: np.ndarray, box: Box) -> np.ndarray: ...


def calibration_inputs(
    engine: LivenessEngine, images: Iterable[np.ndarray]
) -> dict[str, list[np.ndarray]]:
    """Each quantised model's input tensors for ``images`` (the engine finds the faces)."""
    found: dict[str, list[np.ndarray]] = {name: [] for name in QUANTIZED}
    detector = engine.detector
    for image in images:
        blob, _ = detector.preprocess(image)
        canvas = np.zeros((1, 3, *DETECTOR_HW), np.float32)
        canvas[:, :, : blob.shape[2], : blob.shape[3]] = blob
        found["yunet"].append(canvas)
        face = largest(detector.detect(image))
        if face is None:
            continue
        box = int_box(face)
        for name in QUANTIZED[1:]:
            model = engine.models[name]
            assert isinstance(model, Preprocessing), name
            found[name].append(model.preprocess(image, box))
    return found


def quantize(
    path: Path, samples: list[np.ndarray], out: Path, input_hw: tuple[int, int] | None = None
) -> None:
    """NNCF's default (symmetric int8) post-training quantisation of the IR at ``path``."""
    import nncf  # requirements-quantize.txt

    model = ov.Core().read_model(str(path))
    if input_hw is not None:
        model.reshape([1, 3, *input_hw])
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples))
    if input_hw is not None:  # back to a free input size: the engine reshapes per shape
        quantized.reshape([1, 3, -1, -1])
    ov.save_model(quantized, str(out), compress_to_fp16=False)


def build_int8(model_dir: Path, inputs: dict[str, list[np.ndarray]]) -> Path:
    """Quantise every model of ``QUANTIZED`` into ``model_dir/int8``; returns that folder."""
    import nncf

    dest = Path(model_dir) / INT8_DIR
    dest.mkdir(exist_ok=True)
    for name in QUANTIZED:
        hw = DETECTOR_HW if name == "yunet" else None
        quantize(Path(model_dir) / f"{name}.xml", inputs[name], dest / f"{name}.xml", hw)
    f32_manifest = (Path(model_dir) / MANIFEST).read_text()
    (dest / MANIFEST).write_text(
        json.dumps(
            {
                "nncf": nncf.__version__,
                "from": json.loads(f32_manifest),
                "samples": {k: len(v) for k, v in inputs.items()},
                "files": {name: sha256_of(dest / name) for name in _int8_files()},
            },
            indent=2,
            sort_keys=True,
        )
    )
    return dest


def _int8_files() -> list[str]:
    return [f"{name}.{ext}" for name in QUANTIZED for ext in ("xml", "bin")]


def int8_faults(model_dir: Path) -> list[str]:
    """Why ``model_dir/int8``'s models cannot be used as built ([] where there are none, or
    every file is as build_int8 wrote it): a file missing or changed since (a bad copy, a
    disk fault), or no digests recorded (built by an earlier release, whose manifest has
    none: refused rather than trusted as found, since a file damaged before its first check
    would then be recorded as good), or built from f32 models other than those installed (an
    f32 repair or upgrade on a mounted volume keeps int8/). Only an int8 engine asks
    (ml.engine): these faults never stop an f32 start nor make install_models touch the
    folder. Hashes 3.6 MB where they are built."""
    dest = Path(model_dir) / INT8_DIR
    try:
        built = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return []  # none built (or not all written): int8_ready says no
    recorded = built.get("files") if isinstance(built, dict) else None
    if not isinstance(recorded, dict):
        return [f"no digests of the files in {INT8_DIR}/ recorded (built by an earlier release)"]
    faults = digest_faults(dest, _int8_files(), recorded, f"{INT8_DIR}/", "when it was built")
    try:
        current = json.loads((Path(model_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        current = None  # the f32 install's own fault, reported before this is asked
    if current is not None and built.get("from") != current:
        faults.append(f"{INT8_DIR}/ built from other f32 models than those installed")
    return faults


def int8_ready(model_dir: Path) -> bool:
    """True when ``model_dir/int8`` holds every quantised model, built from the f32 IR there,
    each file as it was built."""
    dest = Path(model_dir) / INT8_DIR
    try:
        built = json.loads((dest / MANIFEST).read_text())["from"]
        current = json.loads((Path(model_dir) / MANIFEST).read_text())
    except (OSError, ValueError, KeyError):
        return False
    files = all((dest / f"{n}.{ext}").is_file() for n in QUANTIZED for ext in ("xml", "bin"))
    return files and built == current and not int8_faults(model_dir)
