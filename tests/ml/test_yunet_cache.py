"""YuNet with a partly filled OpenVINO compile cache (issue 9, item 2).

On a cold container two workers race to fill the cache, so some shapes are read from it and
others compiled fresh. The output ports of those two kinds of compiled model are not
interchangeable ("Can not find port"); every shape must still detect the same faces.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from ml.compilation import compile_model, make_core
from ml.decode import decode_image
from ml.yunet import INPUT_SHAPES, YuNet
from tests.ml.conftest import DEV_DATA, MODEL_SOURCE

Shape = tuple[int, int]
IMAGES = ["live/minivision_1.jpg", "live/jomariya_1.jpg", "spoof/minivision_3.jpg"]


def _compile_each(
    model_dir: Path, cache: Path
) -> tuple[dict[Shape, ov.CompiledModel], dict[Shape, set[Path]]]:
    """Every shape compiled through ``cache``; also which cache file each shape added."""
    core = make_core(cache)
    compiled: dict[Shape, ov.CompiledModel] = {}
    blob_of: dict[Shape, set[Path]] = {}
    for shape in INPUT_SHAPES:
        before = set(cache.rglob("*.blob"))
        compiled[shape] = compile_model(core, model_dir / "yunet.xml", 1, shape)
        blob_of[shape] = set(cache.rglob("*.blob")) - before
    return compiled, blob_of


@pytest.fixture(scope="module")
def detectors(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[YuNet, YuNet]:
    """(all shapes compiled fresh, the first shape fresh and the others from the cache)."""
    work = tmp_path_factory.mktemp("yunet-cache")
    for name in ("yunet.xml", "yunet.bin"):
        shutil.copy(model_dir / name, work / name)
    fresh, blob_of = _compile_each(work, work / "cache")
    (removed,) = blob_of[INPUT_SHAPES[0]]
    removed.unlink()  # as when another worker had not written that one yet
    mixed, added = _compile_each(work, work / "cache")
    loaded = {s: m.get_property("LOADED_FROM_CACHE") for s, m in mixed.items()}
    assert loaded == {s: s != INPUT_SHAPES[0] for s in INPUT_SHAPES}
    assert added[INPUT_SHAPES[0]] == {removed}
    return YuNet(fresh), YuNet(mixed)


def _letterbox(image: np.ndarray, shape: Shape) -> np.ndarray:
    """``image`` scaled to fit ``shape`` (height, width), padded right/bottom: a network blob."""
    h, w = image.shape[:2]
    scale = min(shape[0] / h, shape[1] / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    canvas = np.zeros((*shape, 3), np.uint8)
    canvas[: size[1], : size[0]] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], np.float32)


def _faces(detector: YuNet, blob: np.ndarray) -> np.ndarray:
    boxes, marks, scores = detector.decode(detector.infer(blob), blob.shape[2:])
    keep = detector.nms(boxes, scores)
    return np.concatenate([boxes[keep], marks[keep], scores[keep, None]], axis=1)


@pytest.mark.parametrize("shape", INPUT_SHAPES)
def test_every_shape_detects_the_same_faces_with_a_partial_cache(
    detectors: tuple[YuNet, YuNet], shape: Shape
) -> None:
    fresh, mixed = detectors
    oracle = cv2.FaceDetectorYN.create(
        str(MODEL_SOURCE / "yunet/face_detection_yunet_2023mar.onnx"), "", (shape[1], shape[0])
    )
    oracle.setScoreThreshold(mixed.score_threshold)
    oracle.setNMSThreshold(mixed.nms_threshold)
    found = 0
    for name in IMAGES:
        blob = _letterbox(decode_image((DEV_DATA / name).read_bytes()), shape)
        ours = _faces(mixed, blob)
        np.testing.assert_allclose(ours, _faces(fresh, blob), atol=1e-4, err_msg=name)
        _, expected = oracle.detect(blob[0].transpose(1, 2, 0).astype(np.uint8))
        expected = np.zeros((0, 15)) if expected is None else expected
        np.testing.assert_allclose(ours, expected, atol=0.05, err_msg=name)
        found += len(ours)
    assert found >= len(IMAGES)  # each image has its face found at this shape
