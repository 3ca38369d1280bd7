"""Fixtures for the engine's own tests: real models, real dev images, no Django."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.engine import LivenessEngine
from ml.install import default_model_dir, install_models

REPO = Path(__file__).resolve().parents[2]
MODEL_SOURCE = Path(os.environ.get("MODEL_SOURCE", REPO.parent / "shared" / "models"))
DEV_DATA = Path(os.environ.get("FACIA_DEV_DATA", REPO.parent / "shared" / "data" / "dev"))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    target = default_model_dir()  # the Django tests' settings.MODEL_DIR
    install_models(MODEL_SOURCE, target)
    return target


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> LivenessEngine:
    loaded = LivenessEngine.load(model_dir)
    loaded.warm_up()
    return loaded


@pytest.fixture(scope="session")
def dev_image() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (DEV_DATA / name).read_bytes()

    return read
