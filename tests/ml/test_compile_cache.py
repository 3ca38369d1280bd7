"""The OpenVINO compile cache is shared by every worker (issue 19, item 1): one process at a
time compiles each entry (ml.compilation.cache_lock), and a cache that cannot be used is
skipped, never a reason not to start. Several real gunicorn starts:
tests/system/test_cold_start.py."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from ml import compilation
from ml.compilation import LOCKS, cache_key, cache_lock, compile_model, make_core


@pytest.fixture
def work(model_dir: Path, tmp_path: Path) -> Path:
    for name in ("minifasnet_v2.xml", "minifasnet_v2.bin"):
        shutil.copy(model_dir / name, tmp_path / name)
    return tmp_path


def _runs(compiled: ov.CompiledModel) -> None:
    request = compiled.create_infer_request()
    request.infer({0: np.zeros((1, 3, 80, 80), np.float32)})
    assert np.isfinite(request.get_output_tensor(0).data).all()


def _held_by_someone(cache: Path) -> bool:
    (lock,) = (cache / LOCKS).glob("*.lock")
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_compile_fills_the_cache_and_lets_go_of_it(work: Path) -> None:
    cache = work / "cache"
    compiled = compile_model(make_core(cache), work / "minifasnet_v2.xml", 1)
    _runs(compiled)
    assert len(list(cache.rglob("*.blob"))) == 1
    assert not _held_by_someone(cache)
    again = compile_model(make_core(cache), work / "minifasnet_v2.xml", 1)
    assert again.get_property("LOADED_FROM_CACHE")


def test_a_compile_waits_for_the_cache_then_compiles_without_it(
    work: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds a cache entry (compiling it) for longer than a worker waits: the
    worker compiles its own copy, writing nothing there; other entries are not held up."""
    cache = work / "cache"
    core = make_core(cache)
    monkeypatch.setattr(compilation, "CACHE_LOCK_WAIT_S", 0.3)
    key = cache_key(work / "minifasnet_v2.xml", None, "f32", 1)
    with cache_lock(cache, key), caplog.at_level(logging.WARNING, "ml.compilation"):
        compiled = compile_model(core, work / "minifasnet_v2.xml", 1)
    _runs(compiled)
    assert not compiled.get_property("LOADED_FROM_CACHE")
    assert list(cache.rglob("*.blob")) == []
    assert "compiling minifasnet_v2.xml without the cache" in caplog.text
    assert "held by another process" in caplog.text
    caplog.clear()
    with cache_lock(cache, key), caplog.at_level(logging.WARNING, "ml.compilation"):
        other = compile_model(core, work / "minifasnet_v2.xml", 1, (80, 80))  # another entry
    _runs(other)
    assert len(list(cache.rglob("*.blob"))) == 1  # compiled through the cache, not held up
    assert "without the cache" not in caplog.text


def test_a_cache_that_is_not_a_directory_is_skipped(
    work: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = work / "cache"
    core = make_core(cache)
    shutil.rmtree(cache)
    cache.write_text("not a directory")  # replaced under the running server
    with caplog.at_level(logging.WARNING, "ml.compilation"):
        _runs(compile_model(core, work / "minifasnet_v2.xml", 1))
    assert "without the cache" in caplog.text
    with caplog.at_level(logging.WARNING, "ml.compilation"):
        no_cache = make_core(cache)  # cannot be made: compiles without one
    _runs(compile_model(no_cache, work / "minifasnet_v2.xml", 1))
    assert "compiling without a cache" in caplog.text
