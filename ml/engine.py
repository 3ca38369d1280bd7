"""The liveness pipeline: decode -> detect -> pick the face -> two classifiers -> fused P(live).

One engine per process (compiled after fork in gunicorn); one inference thread by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

from ml.decode import decode_image
from ml.errors import FaceRefused, ModelInstallError
from ml.install import models_ready
from ml.minifasnet import MiniFASNet
from ml.runtime import compile_model, make_core
from ml.yunet import INPUT_SHAPES, Face, YuNet

FACE_SCORE_FLOOR = 0.6
# (IR name, crop scale) of each classifier; the fused score is the mean of their P(live).
CLASSIFIERS = (("minifasnet_v2", 2.7), ("minifasnet_v1se", 4.0))
NO_FACE = FaceRefused("no_face", "No face was found in the selfie image.")


@dataclass(frozen=True)
class Verdict:
    p_live: float
    box: tuple[int, int, int, int]
    face_score: float
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = (time.perf_counter() - start) * 1000


def _largest(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: f.box[2] * f.box[3], default=None)


class LivenessEngine:
    def __init__(self, detector: YuNet, classifiers: list[MiniFASNet]) -> None:
        self.detector = detector
        self.classifiers = classifiers

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1, precision: str = "f32") -> LivenessEngine:
        model_dir = Path(model_dir)
        if not models_ready(model_dir):
            raise ModelInstallError(
                f"models are not installed in {model_dir}; run `manage.py install_models`"
            )
        cv2.setNumThreads(1)  # decode/resize run on the request's own thread
        core = make_core(model_dir / "cache")

        def compiled(name: str, shape: tuple[int, int] | None = None) -> ov.CompiledModel:
            return compile_model(core, model_dir / f"{name}.xml", threads, shape, precision)

        detector = YuNet(
            {shape: compiled("yunet", shape) for shape in INPUT_SHAPES},
            score_threshold=FACE_SCORE_FLOOR,
        )
        classifiers = [MiniFASNet(compiled(name), scale) for name, scale in CLASSIFIERS]
        return cls(detector, classifiers)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data)

    def detect(self, image: np.ndarray) -> Face:
        face = _largest(self.detector.detect(image))
        if face is None:
            raise NO_FACE
        return face

    def analyse(self, image: np.ndarray) -> Verdict:
        timings: dict[str, float] = {}
        with _timed(timings, "detect"):
            face = self.detect(image)
        box = tuple(int(v) for v in face.box)
        with _timed(timings, "classify"):
            p_live = float(np.mean([c.p_live(image, box) for c in self.classifiers]))
        return Verdict(p_live, box, face.score, timings)

    def check(self, data: bytes) -> Verdict:
        """Bytes in, verdict out (decode timing included)."""
        start = time.perf_counter()
        image = self.decode(data)
        decode_ms = (time.perf_counter() - start) * 1000
        verdict = self.analyse(image)
        verdict.timings_ms["decode"] = decode_ms
        return verdict

    def warm_up(self) -> None:
        """Run every model once so the first request does not pay for lazy initialisation."""
        image = np.full((480, 640, 3), 128, np.uint8)
        for height, width in self.detector.requests:
            self.detector.detect(cv2.resize(image, (width, height)))
        for classifier in self.classifiers:
            classifier.p_live(image, (270, 190, 100, 100))
