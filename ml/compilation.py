"""OpenVINO compilation settings shared by every model of the engine."""

from __future__ import annotations

from pathlib import Path

import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

# f32 by default so scores match across CPUs; bf16 (on CPUs that have it) is faster and moved
# dev scores by up to 0.04 with the same AUC (README, Performance).
PRECISIONS = {"f32": ov.Type.f32, "bf16": ov.Type.bf16}


def cpu_has_bf16(core: ov.Core) -> bool:
    return "BF16" in core.get_property("CPU", props.device.capabilities)


def compile_model(
    core: ov.Core,
    path: Path,
    threads: int,
    input_hw: tuple[int, int] | None = None,
    precision: str = "f32",
) -> ov.CompiledModel:
    """Compile for low latency on ``threads`` cores at ``precision`` ("f32" keeps scores
    identical across CPUs; "bf16" is used where the CPU has it, f32 elsewhere), with the input
    reshaped to ``input_hw`` (height, width) when given."""
    if precision == "bf16" and not cpu_has_bf16(core):
        precision = "f32"
    config = {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: PRECISIONS[precision],
        props.inference_num_threads: threads,
        props.num_streams: 1,
        # Many single-threaded workers share the machine; OpenVINO's own core pinning would
        # not know about the others, so the OS scheduler places them.
        hints.enable_cpu_pinning: False,
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
