"""Background models (HyperFAS, DTN) run on OpenVINO's thread beside the others: the same
scores as one after another, no request left busy by a failure, one image at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from ml.engine import LivenessEngine
from ml.profiles import PROFILES

IMAGES = ("live/minivision_1.jpg", "spoof/minivision_2.jpg", "spoof/minivision_3.jpg")


def sequential(engine: LivenessEngine) -> LivenessEngine:
    """The same compiled models, every one on the calling thread."""
    return LivenessEngine(engine.detector, engine.models, engine.thresholds)


def test_the_heaviest_models_run_in_the_background(engine: LivenessEngine) -> None:
    assert set(engine.background) == {"hyperfas", "dtn"}
    for profile in PROFILES.values():  # each profile keeps a model on the request's thread
        assert set(profile.models) - set(engine.background)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("name", IMAGES)
def test_background_scores_equal_sequential_scores(
    engine: LivenessEngine, dev_image: Callable[[str], bytes], name: str, profile: str
) -> None:
    data = dev_image(name)
    together = engine.check(data, profile=profile)
    alone = sequential(engine).check(data, profile=profile)
    assert together.scores == alone.scores  # exactly: the same inference, another thread
    assert together.logit == alone.logit


class Failing:
    def p_live(self, image: np.ndarray, box: tuple[int, int, int, int]) -> float:
        raise RuntimeError("broken model")


def test_a_failing_model_leaves_no_background_request_busy(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    broken = LivenessEngine(
        engine.detector,
        {**engine.models, "minifasnet_v2": Failing()},
        engine.thresholds,
        background=engine.background,
    )
    data = dev_image(IMAGES[0])
    with pytest.raises(RuntimeError, match="broken model"):
        broken.check(data)
    # HyperFAS's request was collected: the next check can submit to it again.
    assert engine.check(data).scores == sequential(engine).check(data).scores


def test_concurrent_checks_take_turns(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    """A threaded server (runserver) may call one engine from several threads: each model
    has one inference request, so without the engine's lock OpenVINO says it is busy."""
    data = {name: dev_image(name) for name in IMAGES}
    expected = {name: engine.check(image).scores for name, image in data.items()}
    found: list[tuple[str, dict[str, float]]] = []
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for _ in range(5):
                found.append((name, engine.check(data[name]).scores))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in IMAGES * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(found) == 30 and all(scores == expected[name] for name, scores in found)
