"""Models only other profiles use are compiled on the first image that needs them (``load``'s
``eager``): the same scores as compiled at start, and a broken file refuses that profile only,
until it is fixed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.engine import LivenessEngine
from ml.errors import ModelUnavailable

IMAGE = "spoof/minivision_2.jpg"


def test_a_profile_left_out_compiles_its_models_on_first_use(
    engine: LivenessEngine, model_dir: Path, dev_image: Callable[[str], bytes]
) -> None:
    lazy = LivenessEngine.load(model_dir, eager={"fast"})
    assert "dtn" not in lazy.models and set(lazy.pending) == {"dtn"}
    assert lazy.names == engine.names
    data = dev_image(IMAGE)
    assert lazy.check(data).scores == engine.check(data).scores  # fast: DTN stays pending
    assert "dtn" in lazy.pending
    assert lazy.check(data, profile="thorough").scores == engine.check(data, "thorough").scores
    assert "dtn" in lazy.models and lazy.pending == {}


def test_every_profile_is_compiled_at_start_by_default(engine: LivenessEngine) -> None:
    assert engine.pending == {} and set(engine.models) == set(engine.names)


def test_a_broken_lazy_model_refuses_its_profile_until_fixed(
    engine: LivenessEngine,
    model_dir: Path,
    tmp_path: Path,
    dev_image: Callable[[str], bytes],
) -> None:
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("cache"))
    lazy = LivenessEngine.load(copy, eager={"fast"})
    weights = (copy / "dtn.bin").read_bytes()
    (copy / "dtn.bin").write_bytes(weights[: len(weights) // 2])
    data = dev_image(IMAGE)
    with pytest.raises(ModelUnavailable, match="dtn"):
        lazy.check(data, profile="thorough")
    assert lazy.check(data).scores == engine.check(data).scores  # the default profile serves
    (copy / "dtn.bin").write_bytes(weights)
    assert lazy.check(data, profile="thorough").scores == engine.check(data, "thorough").scores
