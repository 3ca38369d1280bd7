"""ENGINE_PRECISION: the choice per CPU capability, and the int8 variants' wiring (built here
as copies of the f32 IR, so no NNCF is needed: the scores must then equal f32's)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.compilation import choose_precision, cpu_flags, describe_cpu
from ml.engine import LivenessEngine
from ml.errors import ModelInstallError
from ml.install import MANIFEST, sha256_of
from ml.quantize import INT8_DIR, QUANTIZED, int8_ready
from ml.registry import MODEL_FILES

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16\n"


def test_cpu_flags_from_cpuinfo() -> None:
    flags = cpu_flags(CPUINFO)
    assert {"avx512_vnni", "avx512_bf16"} <= flags
    assert cpu_flags("no flags line") == set()
    assert describe_cpu(flags) == "CPU flags: avx512_bf16, avx512_vnni"
    assert describe_cpu(set()) == "CPU flags: no bf16/VNNI/AMX"


@pytest.mark.parametrize(
    ("requested", "has_bf16", "flags", "expected"),
    [
        ("f32", True, {"amx_bf16", "amx_int8"}, "f32"),  # asked: taken as asked
        ("bf16", False, set(), "bf16"),  # compile_model falls back to f32 per model
        ("int8", False, set(), "int8"),
        ("auto", True, {"amx_bf16", "amx_int8", "avx512_bf16"}, "bf16"),  # Sapphire Rapids
        ("auto", True, {"avx512_bf16", "avx512_vnni"}, "bf16"),  # Zen 4/5
        ("auto", True, {"avx512_vnni"}, "f32"),  # OpenVINO emulates bf16 there: not native
        ("auto", False, {"avx2"}, "f32"),
    ],
)
def test_choose_precision(requested: str, has_bf16: bool, flags: set[str], expected: str) -> None:
    chosen, why = choose_precision(requested, has_bf16, flags)
    assert chosen == expected
    assert why


def _f32_copy(model_dir: Path, dest: Path) -> Path:
    dest.mkdir()
    for model in MODEL_FILES:
        for ext in ("xml", "bin"):
            (dest / f"{model.ir}.{ext}").symlink_to(model_dir / f"{model.ir}.{ext}")
    shutil.copy(model_dir / MANIFEST, dest / MANIFEST)
    return dest


def test_int8_without_its_models_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = _f32_copy(model_dir, tmp_path / "models")
    assert not int8_ready(copy)
    with pytest.raises(ModelInstallError, match="bench.quantize --build"):
        LivenessEngine.load(copy, precision="int8")


@pytest.mark.slow  # 7.6 s at load 8: loads a second engine
def test_int8_loads_the_int8_folder_and_logs_the_choice(
    model_dir: Path,
    tmp_path: Path,
    dev_image: Callable[[str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    copy = _f32_copy(model_dir, tmp_path / "models")
    (copy / INT8_DIR).mkdir()
    for name in QUANTIZED:  # stand-ins: the f32 IR itself
        for ext in ("xml", "bin"):
            (copy / INT8_DIR / f"{name}.{ext}").symlink_to(model_dir / f"{name}.{ext}")
    built = {
        "from": json.loads((copy / MANIFEST).read_text()),
        "nncf": "test",
        "files": {p.name: sha256_of(p) for p in (copy / INT8_DIR).iterdir()},
    }
    (copy / INT8_DIR / MANIFEST).write_text(json.dumps(built))
    assert int8_ready(copy)
    with caplog.at_level(logging.INFO, logger="ml.engine"):
        int8 = LivenessEngine.load(copy, precision="int8")
    assert int8.precision == "int8"
    assert any("engine precision int8" in r.getMessage() for r in caplog.records)
    f32 = LivenessEngine.load(copy)
    data = dev_image("live/minivision_1.jpg")
    assert int8.check(data).scores == f32.check(data).scores
    # a stale int8 folder (built from other f32 IR) is not used
    (copy / INT8_DIR / MANIFEST).write_text(json.dumps({**built, "from": {}}))
    assert not int8_ready(copy)
