"""OpenVINO compilation settings shared by every model of the engine."""

from __future__ import annotations

from pathlib import Path

import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints


def compile_model(core: ov.Core, path: Path, threads: int) -> ov.CompiledModel:
    """Compile for low latency on ``threads`` cores, in f32 so scores match across CPUs."""
    config = {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: ov.Type.f32,
        props.inference_num_threads: threads,
        props.num_streams: 1,
    }
    return core.compile_model(str(path), "CPU", config)


def make_core(cache_dir: Path | None) -> ov.Core:
    core = ov.Core()
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        core.set_property({props.cache_dir: str(cache_dir)})
    return core
