"""What the calibration tests share: the engines a command or job loads, to see what each
compiled."""

from __future__ import annotations

from typing import Any

import pytest

from ml.engine import LivenessEngine
from ml.profiles import PROFILES, models_of

FAST_MODELS = set(models_of({"fast": PROFILES["fast"]}))


@pytest.fixture
def loaded_engines(monkeypatch: pytest.MonkeyPatch) -> list[LivenessEngine]:
    """Every engine ``LivenessEngine.load`` builds during the test (the real load runs)."""
    engines: list[LivenessEngine] = []
    real = LivenessEngine.load

    def recorded(cls: type[LivenessEngine], *args: Any, **kwargs: Any) -> LivenessEngine:
        engine = real(*args, **kwargs)
        engines.append(engine)
        return engine

    monkeypatch.setattr(LivenessEngine, "load", classmethod(recorded))
    return engines


def compiled_fast_only(engines: list[LivenessEngine]) -> bool:
    """One engine was loaded and it compiled the fast profile's models, DTN left pending."""
    return (
        len(engines) == 1 and set(engines[0].models) == FAST_MODELS and "dtn" in engines[0].pending
    )
