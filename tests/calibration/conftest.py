"""What the calibration tests share: the engines a command or job loads, to see what each
compiled; an operator's change made while a job or command runs."""

from __future__ import annotations

from collections.abc import Callable
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


@pytest.fixture
def during_the_job(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], None]:
    """Make ``change`` once, as the job decodes its first image (after it read its tenant;
    the real decoder then runs): an operator acting while the job runs."""
    real = LivenessEngine.decode_frame

    def arrange(change: Callable[[], Any]) -> None:
        pending = [change]

        def decode(engine: LivenessEngine, data: bytes) -> Any:
            while pending:
                pending.pop()()
            return real(engine, data)

        monkeypatch.setattr(LivenessEngine, "decode_frame", decode)

    return arrange
