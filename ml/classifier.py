"""The one small interface every liveness model implements (see ml.profiles to add one)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h of the detected face, in image pixels


class LivenessModel(Protocol):
    """A classifier that turns the face box of a BGR image into P(live).

    ``crop`` is the model's own crop rule (how much context around the face it sees);
    ``preprocess`` turns that crop into the network input, ``infer`` runs it and
    ``postprocess`` maps the raw outputs to P(live) in 0..1.
    """

    def crop(self, image: np.ndarray, box: Box) -> np.ndarray: ...

    def preprocess(self, image: np.ndarray, box: Box) -> np.ndarray: ...

    def infer(self, blob: np.ndarray) -> Any: ...

    def postprocess(self, raw: Any) -> float: ...

    def p_live(self, image: np.ndarray, box: Box) -> float: ...
