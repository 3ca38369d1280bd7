"""The model registry: one spec per model file (where it comes from, its checksum, how it is
prepared, how it is built, at which precision). Install (``ml.install``) and the engine
(``ml.engine.LivenessEngine.load``) read it; the profiles (``ml.profiles``) name its models by
their ``ir`` (tests/ml/test_profiles.py checks each name is here).

Adding a liveness model is one class with ``p_live(image, box)`` (``ml.classifier``) and one
entry in ``CLASSIFIERS``; a profile then names it with a weight, and the score maps are refitted
(docs/contributor/adding-a-model.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import openvino as ov
from openvino.preprocess import PrePostProcessor

from ml.classifier import LivenessModel
from ml.dtn import DTN
from ml.hyperfas import HyperFAS
from ml.minifasnet import MiniFASNet


def u8_input(model: ov.Model) -> ov.Model:
    """Take the uint8 crop: the cast to float and the /255 run inside the graph."""
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8)
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
    return ppp.build()


@dataclass(frozen=True)
class ModelSpec:
    ir: str  # the IR base name in MODEL_DIR
    source: str  # path relative to the source directory
    sha256: str
    # How the compiled model becomes a LivenessModel; None for the face detector (ml.yunet).
    build: Callable[[ov.CompiledModel], LivenessModel] | None = None
    # Applied to the graph before it is saved as IR (named in the install manifest).
    prepare: Callable[[ov.Model], ov.Model] | None = None
    # "f32" keeps scores identical across CPUs; "bf16" is used where the CPU has it (f32
    # elsewhere) for a model whose dev AUC does not move with it (docs, Accuracy, "Profiles").
    precision: str = "f32"
    # Runs on OpenVINO's own thread while the request's thread runs the profile's other models
    # (ml.classifier.BackgroundModel): the heaviest of a profile, so the two halves take about
    # as long. HyperFAS (1.5 ms) beside the MiniFASNet pair (2 x 0.6 ms): a whole check 6.7
    # instead of 8.5 ms on an idle machine, for 3% more CPU (interleaved rounds, docs, Performance).
    background: bool = False

    @property
    def prepare_step(self) -> str:
        return self.prepare.__name__ if self.prepare is not None else ""


# Checksums from shared/models/NOTICE.md.
DETECTOR = ModelSpec(
    "yunet",
    "yunet/face_detection_yunet_2023mar.onnx",
    "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
)
CLASSIFIERS: dict[str, ModelSpec] = {
    spec.ir: spec
    for spec in (
        ModelSpec(
            "minifasnet_v2",
            "minifasnet/MiniFASNetV2.onnx",
            "4eed38f0bde33c9b805942a5f25e42ce1161e2bda545254be622be957727794e",
            build=partial(MiniFASNet, scale=2.7),
        ),
        ModelSpec(
            "minifasnet_v1se",
            "minifasnet/MiniFASNetV1SE.onnx",
            "d819a69bac6b9ade2a0f4d9b60b618e1260f7bf3ba1fddff6c5d82131cb1083f",
            build=partial(MiniFASNet, scale=4.0),
        ),
        ModelSpec(
            "hyperfas",
            "hyperfas/fas.onnx",
            "8db4e290e47eb9525d9df286d27e75cade314bee35543ad978f9aee42563783a",
            build=HyperFAS,
            background=True,
        ),
        ModelSpec(
            "dtn",
            "dtn/FaceAntiSpoofing.tflite",
            "a980757d55e2835aff69f2fa9b04914e21d426dd8a43588c2982d50e8038ec02",
            build=DTN,
            prepare=u8_input,
            precision="bf16",
            background=True,
        ),
    )
}
MODEL_FILES: tuple[ModelSpec, ...] = (DETECTOR, *CLASSIFIERS.values())
