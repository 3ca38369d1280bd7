"""The small interfaces every liveness model implements (see ml.registry to add one)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import openvino as ov

Box = tuple[int, int, int, int]  # x, y, w, h of the detected face, in image pixels


class LivenessModel(Protocol):
    """What the engine calls on a classifier: P(live) in 0..1 for the face ``box`` of a BGR
    image. How a model crops, preprocesses, infers and postprocesses is its own business
    (``ml.minifasnet``, ``ml.hyperfas``, ``ml.dtn``); its spec in ``ml.registry`` says how the
    compiled model becomes one."""

    def p_live(self, image: np.ndarray, box: Box) -> float: ...


class BackgroundModel(LivenessModel, Protocol):
    """A model the engine can run on OpenVINO's own thread while the request's thread runs the
    others (its spec says ``background=True``): ``start`` crops and submits, ``result`` waits
    for the inference and gives P(live), the same number ``p_live`` gives."""

    def start(self, image: np.ndarray, box: Box) -> None: ...

    def result(self) -> float: ...


class InFlight:
    """One inference submitted to OpenVINO's own thread, its input kept alive (OpenVINO reads
    it in place) until ``wait`` returns."""

    def __init__(self, request: ov.InferRequest) -> None:
        self.request = request
        self._blob: np.ndarray | None = None

    def start(self, blob: np.ndarray) -> None:
        self._blob = blob
        self.request.start_async({0: blob}, share_inputs=True)

    def wait(self) -> None:
        self.request.wait()
        self._blob = None
