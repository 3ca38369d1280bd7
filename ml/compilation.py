"""OpenVINO compilation settings shared by every model of the engine."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

# f32 by default so scores match across CPUs; bf16 (on CPUs that have it) is faster and moved
# dev scores by up to 0.04 with the same AUC (docs, Performance).
PRECISIONS = {"f32": ov.Type.f32, "bf16": ov.Type.bf16}
# A compile holds its cache entry's lock for one model (0.1-0.3 s here, a few s on a loaded box);
# a worker that waits longer compiles without the cache rather than not starting.
CACHE_LOCK_WAIT_S = 60.0
LOCKS = ".locks"  # the cache entries' lock files, a folder of the cache (OpenVINO reads *.blob)
DIGESTS = ".sha256.json"  # in LOCKS, beside an entry's lock: the digests of its blobs
log = logging.getLogger(__name__)


# ENGINE_PRECISION=auto: what each CPU capability gives (docs, Performance). int8 is never
# picked by itself: the NNCF variants missed the accuracy bars on dev (python -m bench.quantize).
VECTOR_FLAGS = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni")


def cpu_has_bf16(core: ov.Core) -> bool:
    return "BF16" in core.get_property("CPU", props.device.capabilities)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def describe_cpu(flags: set[str] | None = None) -> str:
    flags = cpu_flags() if flags is None else flags
    present = [f for f in VECTOR_FLAGS if f in flags]
    return "CPU flags: " + (", ".join(present) if present else "no bf16/VNNI/AMX")


def choose_precision(requested: str, has_bf16: bool, flags: set[str]) -> tuple[str, str]:
    """The precision to compile at and why. f32, bf16 and int8 are taken as asked (bf16 falls
    back to f32 per model where the CPU lacks it, in compile_model); "auto" picks bf16 where
    the CPU runs it natively (AMX on Sapphire Rapids, AVX512_BF16 on Zen 4/5 and Cooper Lake),
    f32 elsewhere."""
    if requested != "auto":
        return requested, f"ENGINE_PRECISION={requested}"
    if has_bf16 and flags & {"amx_bf16", "avx512_bf16"}:
        native = sorted(flags & {"amx_bf16", "avx512_bf16"})
        return "bf16", f"auto: the CPU has {', '.join(native)}"
    return "f32", "auto: no native bf16 on this CPU"


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
    cache = core.get_property(props.cache_dir)
    if not cache:
        return core.compile_model(model, "CPU", config)
    key = cache_key(path, input_hw, precision, threads)
    try:
        with cache_lock(Path(cache), key):
            entry, record = _entry_paths(Path(cache), key)
            kept = _verified_entry(entry, record)
            compiled = core.compile_model(model, "CPU", {**config, props.cache_dir: str(entry)})
            _record_entry(entry, record, kept)
            return compiled
    except (RuntimeError, OSError) as exc:
        # The cache is only a speed-up: a model that cannot go through it is compiled without
        # it (a real fault of the model fails again here, and is raised).
        log.warning("compiling %s without the cache %s: %s", path.name, cache, exc)
        return core.compile_model(model, "CPU", {**config, props.cache_dir: ""})


def cache_key(path: Path, input_hw: tuple[int, int] | None, precision: str, threads: int) -> str:
    """What makes one compile cache entry (with the fixed rest of compile_model's config)."""
    return f"{Path(path).resolve()} {input_hw} {precision} {threads}"


def _entry_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _entry_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    """The folder of ``key``'s blobs (``cache_dir``/<name>) and the record of their digests
    (``cache_dir``/.locks/<name>.sha256.json, beside the entry's lock). One folder per entry,
    written only under that entry's lock: in one shared folder a blob another worker was
    writing could not be told from one that changed on disk."""
    name = _entry_name(key)
    return cache_dir / name, cache_dir / LOCKS / f"{name}{DIGESTS}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_faults(
    folder: Path, names: Iterable[str], recorded: Mapping[str, object], shown: str, when: str
) -> list[str]:
    """Each of ``names`` missing from ``folder`` or whose SHA-256 is not ``recorded``'s, named
    ``shown`` + its name, the record made ``when``."""
    faults = []
    for name in names:
        path = folder / name
        if not path.is_file():
            faults.append(f"{shown}{name} is missing")
        elif sha256_of(path) != recorded.get(name):
            faults.append(f"{shown}{name} differs from the digest recorded {when}")
    return faults


def _verified_entry(entry: Path, record: Path) -> dict[str, list[object]]:
    """Delete each file of ``entry`` whose digest differs from ``record``'s or that has none
    there, so that OpenVINO rebuilds it: it loads a blob without checking it, and 64 KiB of
    zeros in one gave other scores on 78 of 79 dev images with nothing raised. Returns what
    is kept: name -> [sha256, size, mtime_ns]. Hashing a filled cache (9 entries, 13.8 MB)
    costs each worker ~17 ms of its 1.4 s start here (median of 7)."""
    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    kept: dict[str, list[object]] = {}
    if not entry.is_dir():
        return kept
    for item in sorted(entry.iterdir()):
        stat = item.lstat()
        if item.is_file() and not item.is_symlink():
            digest = sha256_of(item)
            if isinstance(known := recorded.get(item.name), list) and known[:1] == [digest]:
                kept[item.name] = [digest, stat.st_size, stat.st_mtime_ns]
                continue
            why = "differs from the digest recorded" if item.name in recorded else "has no digest"
        else:
            why = "is not a plain file"
        log.warning("deleting %s from the compile cache: it %s; OpenVINO rebuilds it", item, why)
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink()
    return kept


def _record_entry(entry: Path, record: Path, kept: dict[str, list[object]]) -> None:
    """Record the digest of each blob of ``entry``: those kept as they were, and those the
    compile wrote."""
    digests: dict[str, list[object]] = {}
    for blob in sorted(entry.glob("*.blob")) if entry.is_dir() else []:
        stat = blob.stat()
        known = kept.get(blob.name)
        if known is not None and known[1:] == [stat.st_size, stat.st_mtime_ns]:
            digests[blob.name] = known
        else:
            digests[blob.name] = [sha256_of(blob), stat.st_size, stat.st_mtime_ns]
    if digests == kept and record.is_file():
        return
    staged = record.with_name(record.name + ".tmp")
    staged.write_text(json.dumps(digests, sort_keys=True))
    os.replace(staged, record)


@contextmanager
def cache_lock(cache_dir: Path, key: str, wait: float | None = None) -> Iterator[None]:
    """Hold the cache entry of ``key`` (one model, shape and precision) for this process alone:
    an flock on a file of ``cache_dir``/.locks. OpenVINO's cache is not safe across processes:
    with 4 gunicorn workers compiling into an empty cache at once, one worker read another's
    half-written blob and deleted it, and the writer failed ("cannot set permissions: No such
    file or directory") or was killed by SIGBUS (4 of 7 cold starts; python -m
    bench.cold_start). One lock per entry, not one for the cache: the workers, compiling the
    same models in the same order, then follow each other through them instead of taking
    turns for whole engines. TimeoutError after ``wait`` s (CACHE_LOCK_WAIT_S by default)."""
    wait = CACHE_LOCK_WAIT_S if wait is None else wait
    locks = cache_dir / LOCKS
    locks.mkdir(exist_ok=True)
    name = _entry_name(key)
    fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{key} held by another process in {cache_dir} for {wait} s"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


def make_core(cache_dir: Path | None) -> ov.Core:
    """An OpenVINO core compiling through ``cache_dir`` (none where it cannot be made)."""
    core = ov.Core()
    if cache_dir is not None:
        try:
            (cache_dir / LOCKS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("compiling without a cache: %s", exc)
            return core
        core.set_property({props.cache_dir: str(cache_dir)})
    return core
