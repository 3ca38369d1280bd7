"""OpenVINO compilation settings shared by every model of the engine."""

from __future__ import annotations

from pathlib import Path

import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints


def cpu_has_bf16(core: ov.Core) -> bool:
    return "BF16" in core.get_property("CPU", props.device.capabilities)


def compile_model(
    core: ov.Core,
    path: Path,
    threads: int,
    input_hw: tuple[int, int] | None = None,
    precision: str = "f32",
) -> ov.CompiledModel:
    """Compile for low latency on ``threads`` cores, in f32 so scores match across CPUs
    (``precision="bf16"`` asks for bf16 where the CPU has it), with the input reshaped to
    ``input_hw`` (height, width) when given."""
    bf16 = precision == "bf16" and cpu_has_bf16(core)
    config = {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: ov.Type.bf16 if bf16 else ov.Type.f32,
        props.inference_num_threads: threads,
        props.num_streams: 1,
    }
    model = core.read_model(str(path))
    if input_hw is not None:
        model.reshape([1, 3, *input_hw])
    return core.compile_model(model, "CPU", config)


def make_core(cache_dir: Path | None) -> ov.Core:
    core = ov.Core()
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        core.set_property({props.cache_dir: str(cache_dir)})
    return core
