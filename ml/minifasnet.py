"""MiniFASNet liveness classifiers (Silent-Face-Anti-Spoofing), one class per crop scale."""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov

SIZE = 80
LIVE_CLASS = 1


def crop_box(
    width: int, height: int, box: tuple[int, int, int, int], scale: float
) -> tuple[int, int, int, int]:
    """The classifier's crop: the face box grown by ``scale`` about its centre (less if the
    image is too small), shifted back inside the image. Returns inclusive x1, y1, x2, y2."""
    x, y, w, h = box
    scale = min(scale, (height - 1) / h, (width - 1) / w)
    new_w, new_h = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    x1, y1, x2, y2 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x1 < 0:
        x2, x1 = x2 - x1, 0
    if y1 < 0:
        y2, y1 = y2 - y1, 0
    if x2 > width - 1:
        x1, x2 = x1 - (x2 - width + 1), width - 1
    if y2 > height - 1:
        y1, y2 = y1 - (y2 - height + 1), height - 1
    return int(x1), int(y1), int(x2), int(y2)


class MiniFASNet:
    def __init__(self, compiled: ov.CompiledModel, scale: float) -> None:
        self.request = compiled.create_infer_request()
        self.scale = scale

    def crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The face box grown by this model's scale (see ``crop_box``), resized to 80x80."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = crop_box(width, height, box, self.scale)
        return cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (SIZE, SIZE))

    def preprocess(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """80x80 BGR crop as float32 NCHW, pixel values 0..255 (no normalisation)."""
        return self.crop(image, box).transpose(2, 0, 1)[None].astype(np.float32)

    def infer(self, blob: np.ndarray) -> np.ndarray:
        # The blob is this call's own contiguous array: sharing it spares OpenVINO's input copy
        # (3-8 % of a 640x480 check, interleaved runs).
        self.request.infer({0: blob}, share_inputs=True)
        scores: np.ndarray = self.request.get_output_tensor(0).data[0]  # openvino: untyped
        return scores

    @staticmethod
    def postprocess(logits: np.ndarray) -> float:
        """P(live): softmax over the three classes, class 1 is live."""
        exp = np.exp(logits - logits.max())
        return float(exp[LIVE_CLASS] / exp.sum())

    def p_live(self, image: np.ndarray, box: tuple[int, int, int, int]) -> float:
        return self.postprocess(self.infer(self.preprocess(image, box)))
