"""Deep Tree Network liveness model (FaceAntiSpoofing.tflite, print and replay attacks).

Facts from shared/models/NOTICE.md: NHWC [1,256,256,3] RGB / 255; the face box made square
(shorter side grown to the longer, centred), clamped to the image, resized to 256x256.
Outputs: [1,8] leaf scores and [1,8] leaf mask; attack score = sum(|scores| * mask), above
0.2 means attack.
"""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov

from ml.classifier import InFlight

SIZE = 256
ATTACK_THRESHOLD = 0.2
# P(live) = clip(1 - score / (2 * ATTACK_THRESHOLD), 0, 1): monotone, 0.2 -> 0.5, so the
# tenant threshold of 0.5 keeps the model's own decision rule.
SCORE_SPAN = 2 * ATTACK_THRESHOLD
SCORES, MASK = "Identity", "Identity_1"


def square_box(
    width: int, height: int, box: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """DTN's crop: the box made square about its centre, clamped. Inclusive x1, y1, x2, y2."""
    x, y, w, h = box
    side = max(w, h)
    x1, y1 = x + (w - side) / 2, y + (h - side) / 2
    x2, y2 = x1 + side, y1 + side
    return (
        int(max(x1, 0)),
        int(max(y1, 0)),
        int(min(x2, width - 1)),
        int(min(y2, height - 1)),
    )


def attack_score(scores: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sum(np.abs(scores) * mask))


def p_live_of(score: float) -> float:
    return float(np.clip(1.0 - score / SCORE_SPAN, 0.0, 1.0))


class DTN:
    """Feeds the RGB uint8 crop when the IR takes uint8 (``install`` builds it so: the
    conversion to float and the /255 run inside the graph); float32 RGB / 255 otherwise."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.request = compiled.create_infer_request()
        self.u8 = compiled.input(0).get_element_type() == ov.Type.u8
        self._outputs = {name: compiled.output(name) for name in (SCORES, MASK)}
        self._in_flight = InFlight(self.request)

    def crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        height, width = image.shape[:2]
        x1, y1, x2, y2 = square_box(width, height, box)
        return cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (SIZE, SIZE))

    def preprocess(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        rgb = np.ascontiguousarray(self.crop(image, box)[None, ..., ::-1])
        return rgb if self.u8 else rgb.astype(np.float32) / 255.0

    def infer(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.request.infer({0: blob})
        return self._raw()

    def _raw(self) -> tuple[np.ndarray, np.ndarray]:
        scores, mask = (self.request.get_tensor(self._outputs[n]).data[0] for n in (SCORES, MASK))
        return scores.copy(), mask.copy()

    @staticmethod
    def postprocess(raw: tuple[np.ndarray, np.ndarray]) -> float:
        return p_live_of(attack_score(*raw))

    def p_live(self, image: np.ndarray, box: tuple[int, int, int, int]) -> float:
        return self.postprocess(self.infer(self.preprocess(image, box)))

    def start(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Submit to OpenVINO's own thread; ``result`` collects it (ml.engine.score)."""
        self._in_flight.start(self.preprocess(image, box))

    def result(self) -> float:
        self._in_flight.wait()
        return self.postprocess(self._raw())
