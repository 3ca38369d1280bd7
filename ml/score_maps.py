"""The shipped score map: P(live | capture kind) from a profile's fused logit.

Each capture kind puts the fused logit at its own level (a face crop of a live person can
score lower than a full-frame attack), so one threshold cannot serve both. A map per profile
and per kind, P = sigmoid(a * z + b), brings both kinds to one scale where 0.5 means the same.
The maps are plain data (``score_maps.json``, beside this module) with their provenance: the
sources they were fitted on and the figures measured leaving one source out. A tenant's own
calibration starts from these maps (``ml.calibration``). Plain Python, no Django.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ml.calibration import Platt
from ml.profiles import CAPTURES

DATA = Path(__file__).with_name("score_maps.json")


@cache
def document(path: Path = DATA) -> dict[str, Any]:
    """The shipped file: {"maps": {profile: {kind: {"a", "b"}}}, "provenance": {...}}."""
    return json.loads(path.read_text())


def shipped(profile: str, capture: str) -> Platt:
    """The map of ``profile`` for ``capture`` ("frame" or "crop"); the identity where the file
    has none (a profile added after the last fit)."""
    entry = document()["maps"].get(profile, {}).get(capture)
    return Platt(float(entry["a"]), float(entry["b"])) if entry else Platt()


def maps() -> dict[str, dict[str, Platt]]:
    """Every shipped map, by profile then capture kind."""
    return {
        profile: {kind: shipped(profile, kind) for kind in CAPTURES}
        for profile in document()["maps"]
    }
