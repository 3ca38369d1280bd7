"""HyperFAS liveness classifier (zeusees/HyperFAS, MobileNet-0.5, one sigmoid output).

Facts from shared/models/NOTICE.md: NHWC [1,224,224,3] BGR, (x - 127.5) / 127.5; the crop is
a square of side 1.2 x max(w, h) about the face box centre, clamped to the image (no padding,
so it is not square at an edge), resized to 224x224 bilinear. Output ``dense_1`` [1,1] is
P(live) directly. It sees the tight face the MiniFASNet crops lose their context on.
"""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov

from ml.classifier import InFlight

SIZE = 224
SCALE = 1.2


def tight_box(
    width: int, height: int, box: tuple[int, int, int, int], scale: float = SCALE
) -> tuple[int, int, int, int]:
    """HyperFAS's crop: a square of ``scale`` x the longer side about the box centre, clamped
    to the image. Returns x1, y1, x2, y2 with x2, y2 exclusive."""
    x, y, w, h = box
    side = scale * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    x1, y1 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    x2, y2 = int(min(cx + side / 2, width)), int(min(cy + side / 2, height))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


class HyperFAS:
    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.request = compiled.create_infer_request()
        self._in_flight = InFlight(self.request)

    def crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        height, width = image.shape[:2]
        x1, y1, x2, y2 = tight_box(width, height, box)
        return cv2.resize(image[y1:y2, x1:x2], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)

    def preprocess(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """224x224 BGR crop as float32 NHWC scaled to -1..1."""
        crop = self.crop(image, box).astype(np.float32)
        return ((crop - 127.5) / 127.5)[None]

    def infer(self, blob: np.ndarray) -> np.ndarray:
        # The blob is this call's own contiguous array: sharing it spares OpenVINO's input copy
        # (3-8 % of a 640x480 check, interleaved runs).
        self.request.infer({0: blob}, share_inputs=True)
        scores: np.ndarray = self.request.get_output_tensor(0).data[0]  # openvino: untyped
        return scores

    @staticmethod
    def postprocess(raw: np.ndarray) -> float:
        """The sigmoid output is P(live) already."""
        return float(np.clip(raw[0], 0.0, 1.0))

    def p_live(self, image: np.ndarray, box: tuple[int, int, int, int]) -> float:
        return self.postprocess(self.infer(self.preprocess(image, box)))

    def start(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Submit to OpenVINO's own thread; ``result`` collects it (ml.engine.score)."""
        self._in_flight.start(self.preprocess(image, box))

    def result(self) -> float:
        self._in_flight.wait()
        return self.postprocess(self.request.get_output_tensor(0).data[0])
