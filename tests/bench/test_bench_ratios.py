"""bench.ratios' bare engines: bench.engine_cost's children, one pinned to each core and one
on any core, answering their runs (a real engine each)."""

import os

import pytest
from django.conf import settings

from bench import engine_cost, ratios
from bench.images import REPO
from ml.install import install_models


@pytest.mark.slow
def test_bare_engines_pinned_per_core_and_one_free() -> None:
    install_models(settings.MODEL_SOURCE, REPO / "var" / "models")  # what the children load
    images = engine_cost.jpeg_files({"selfie": "320x240"})
    bare = ratios.Bare(images, seconds=0.05)
    try:
        cores = sorted(os.sched_getaffinity(0))
        assert [os.sched_getaffinity(c.process.pid) for c in bare.pinned] == [{c} for c in cores]
        assert os.sched_getaffinity(bare.single.process.pid) == set(cores)
        assert bare.all_cores() > 0
        assert bare.one() > 0
        answer = bare.single.run("selfie", 3)
        assert set(answer) == {"cpu_ms", "wall_ms", "p50_ms"}
        assert answer["p50_ms"] <= 3 * answer["wall_ms"]  # one of three checks, not their sum
    finally:
        bare.close()
    assert all(c.process.returncode == 0 for c in [bare.single, *bare.pinned])
