"""Copy the registry's model files (``ml.registry``) from a source directory, verify them, and
convert them to OpenVINO IR.

The IR (and a manifest of what it was built from, with each installed file's digest) lives in
``MODEL_DIR``; nothing here is committed. Re-running with unchanged inputs and intact installed
files does nothing; a file changed since it was installed is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import openvino as ov

from ml.compilation import DIGESTS, LOCKS, digest_faults
from ml.compilation import sha256_of as sha256_of  # the installer's, used beyond it
from ml.errors import ModelDirRefused, ModelDirUnwritable, ModelInstallError
from ml.quantize import INT8_DIR
from ml.registry import MODEL_FILES, ModelSpec

MANIFEST = "manifest.json"
REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def default_model_dir() -> Path:
    """The service's ``MODEL_DIR`` (facia_site.settings) read without Django, for the engine's
    own commands, the benchmarks and the engine's tests: ``MODEL_DIR``, else
    ``FACIA_VAR_DIR``/models, else var/models in the repository; blank is unset."""
    if model_dir := os.environ.get("MODEL_DIR", "").strip():
        return Path(model_dir)
    var_dir = os.environ.get("FACIA_VAR_DIR", "").strip()
    return (Path(var_dir) if var_dir else REPO / "var") / "models"


def _expected_manifest() -> dict[str, object]:
    return {
        "openvino": ov.get_version(),
        "models": {
            m.ir: {"source": m.source, "sha256": m.sha256, "prepare": m.prepare_step}
            for m in MODEL_FILES
        },
    }


def _installed_files() -> list[str]:
    return [f"{m.ir}.{ext}" for m in MODEL_FILES for ext in ("xml", "bin")]


def _digests(dest: Path) -> dict[str, str]:
    return {name: sha256_of(dest / name) for name in _installed_files()}


def installed_faults(dest: Path) -> list[str]:
    """Why ``dest`` cannot be used ([] when it can): no manifest, IR built from other files or
    by another OpenVINO version, or an installed file missing or changed since it was
    installed (a bad copy, a disk fault). Hashes every file: 13 MB, 13 ms here. The compile
    cache is checked by each compile (ml.compilation); ``int8/`` by an int8 engine alone
    (ml.quantize.int8_faults): an f32 install or start never depends on it."""
    try:
        current = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return [f"no readable {MANIFEST}"]
    if not isinstance(current, dict):
        return [f"no readable {MANIFEST}"]
    recorded = current.pop("files", None)
    if current != _expected_manifest():
        return ["built from other model files or by another OpenVINO version"]
    if not isinstance(recorded, dict):
        return ["no digests of the installed files recorded"]
    return digest_faults(dest, _installed_files(), recorded, "", "at install")


def models_ready(dest: Path) -> bool:
    """True when ``dest`` holds IR built from the expected files by this OpenVINO version,
    every file as it was installed."""
    return not installed_faults(dest)


def _verified_source(source: Path, model: ModelSpec) -> bytes:
    """``model``'s source file, as the bytes that were hashed: converting the file in
    ``source`` after hashing it would install whatever replaced it meanwhile, unchecked."""
    path = source / model.source
    if not path.is_file():
        raise ModelInstallError(f"model file missing: {path}")
    try:
        data = path.read_bytes()  # 4.1 MB at most (DTN)
    except OSError as exc:  # the source's fault, not the destination's
        raise ModelInstallError(f"cannot read the model file {path}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != model.sha256:
        raise ModelInstallError(
            f"checksum mismatch for {path}: expected {model.sha256}, got {actual}; refusing it"
        )
    return data


def _convert(path: Path, model: ModelSpec, dest: Path) -> None:
    network = ov.Core().read_model(str(path))
    if model.prepare is not None:
        network = model.prepare(network)
    try:
        ov.save_model(network, str(dest / f"{model.ir}.xml"), compress_to_fp16=False)
    except RuntimeError as exc:  # OpenVINO gives a failed write as "basic_ios::clear"
        _raise_write_failure(dest, 2 * path.stat().st_size + (1 << 20), exc)
        raise


PROBE = ".write-probe"


def _raise_write_failure(folder: Path, size: int, failure: RuntimeError) -> None:
    """Raise the OSError (full, over quota, read-only, an I/O error) that writing ``size``
    bytes into ``folder`` meets, from ``failure``; return when the folder takes them, the
    failure then being the model's own. ``size`` is twice the source file plus 1 MiB: each
    IR measures at most 1.25 times its source plus 0.4 MiB (yunet: 0.23 MB gives 0.63 MB),
    and a failed save removes what it wrote (a 600 KiB disk has 600 KiB free after one)."""
    probe = folder / PROBE
    try:
        with probe.open("wb", buffering=0) as handle:
            for _ in range(0, size, 1 << 20):
                handle.write(bytes(1 << 20))
            os.fsync(handle.fileno())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror) from failure
    finally:
        with contextlib.suppress(OSError):  # nothing written, or a read-only folder
            probe.unlink(missing_ok=True)


def install_models(source: Path, dest: Path) -> bool:
    """Verify every source file, then (re)build the IR. Returns False when already current."""
    source, dest = Path(source), Path(dest)
    if not installed_faults(dest):
        return False
    # A symlink is replaced where it points, and "." by the folder it names (the lock and the
    # staging directory go beside it, by its name); a mount point (a volume mounted at
    # MODEL_DIR, which containers share) cannot be renamed over (EBUSY): its files are replaced
    # in it, the lock and the staging directory inside it too, so that all who mount it share
    # the lock.
    # Renaming over either failed on every start, a mount point emptied first.
    dest = dest.resolve()
    in_place = os.path.ismount(dest)
    staging = dest / STAGING if in_place else _beside(dest, ".staging")
    lock = dest / INSTALL_LOCK if in_place else _beside(dest, ".lock")
    _refuse_unsafe(source, dest, (staging,) if in_place else (dest, staging), lock)
    with _install_lock(lock, dest):
        faults = installed_faults(dest)  # another process may have installed them meanwhile
        if not faults:
            return False
        if (dest / MANIFEST).exists():
            log.warning("re-installing the models in %s: %s", dest, "; ".join(faults))
        try:
            # all or nothing: every source verified before anything is built or removed
            _build(source, staging)
            if in_place:
                _replace_files(staging, dest)
            else:
                shutil.rmtree(dest, ignore_errors=True)
                staging.rename(dest)  # readers never see a half-built directory
        except OSError as exc:  # read-only, full, or not a directory: say where
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelDirUnwritable(f"cannot write the models to {dest}: {exc}") from exc
        except ModelInstallError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return True


INSTALL_LOCK = ".install.lock"  # in a mount point, beside its models
STAGING = ".staging"
SOURCES = ".sources"  # in the staging folder: the verified copies of the sources, converted
CACHE = "cache"  # the engine's compile cache (ml.engine): <key>.blob, and LOCKS/<key>.lock


def _refuse_unsafe(source: Path, dest: Path, replaced: tuple[Path, ...], lock: Path) -> None:
    """Refuse to install when that would delete anything the installer did not write: a
    ``dest`` (resolved) holding, inside or being the source, or ``replaced`` folders holding
    other files (a FACIA_VAR_DIR given as MODEL_DIR would lose its database and secret_key).
    In a mount point only the staging folder is replaced, its other entries (lost+found) kept.
    Looked at before ``lock`` is written, and again once the install holding it has ended:
    mid-way, it removes and renames those folders, and a file gone between listing and
    looking reads as a stranger's (7 of 119 starts during a reinstall with 3,000 cache
    entries were refused)."""
    src = source.resolve()
    if src == dest or src in dest.parents or dest in src.parents:
        raise ModelDirRefused(
            f"refusing to install the models into {dest}: it overlaps the source {source}"
        )
    strays = _strays_in(dest, replaced)
    if strays and _waited_for_install(lock):
        strays = _strays_in(dest, replaced)
    if strays:
        shown = [os.path.relpath(stray, dest.parent) for stray in strays[:3]]
        more = f" and {len(strays) - 3} more" if len(strays) > 3 else ""
        raise ModelDirRefused(
            f"refusing to install the models into {dest}: it holds files the installer did "
            f"not write ({', '.join(shown)}{more}); give a new or empty folder"
        )


def _strays_in(dest: Path, replaced: tuple[Path, ...]) -> list[str]:
    """``_strays`` of each of ``replaced``; a path removed while it was listed stands for one
    (an install under way: looked at again once it has ended)."""
    names = _ir_files(dest)
    try:
        return [stray for folder in replaced for stray in _strays(folder, names)]
    except FileNotFoundError as gone:
        return [str(gone.filename)]


def _waited_for_install(lock: Path) -> bool:
    """Wait for the install holding ``lock``, if any, to end; False when there is no lock
    file (no install has run beside this folder), which is then not written."""
    try:
        handle = lock.open("rb")
    except OSError:
        return False
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH)  # released when the handle closes
    return True


def _ir_files(dest: Path) -> frozenset[str]:
    """The IR file names this release installs, and those ``dest``'s manifest records (an
    earlier release's models, replaced on upgrade)."""
    names = set(_installed_files())
    try:
        recorded = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return frozenset(names)
    if isinstance(recorded, dict) and isinstance(files := recorded.get("files"), dict):
        names.update(str(name) for name in files)
    if isinstance(recorded, dict) and isinstance(models := recorded.get("models"), dict):
        names.update(f"{ir}.{ext}" for ir in models for ext in ("xml", "bin"))
    return frozenset(names)


def _strays(folder: Path, names: frozenset[str]) -> list[str]:
    """What ``folder`` holds that neither the installer nor the engine wrote (its IR, manifest,
    lock and staging folder; the compile cache; bench.quantize's int8 folder), as paths;
    ``folder`` itself when it is not a folder, nothing when it is not there."""
    if not folder.is_symlink() and not folder.exists():
        return []
    if folder.is_symlink() or not folder.is_dir():
        return [str(folder)]
    return sorted(str(entry) for entry in folder.iterdir() if not _owned(entry, names))


def _owned(entry: Path, names: frozenset[str]) -> bool:
    if entry.is_symlink():
        return False
    if entry.is_file():
        return entry.name in names or entry.name in (MANIFEST, INSTALL_LOCK)
    if entry.name in (STAGING, INT8_DIR):
        return not _strays(entry, names)
    if entry.name == SOURCES and entry.parent.name.endswith(STAGING):  # a killed install's
        return all(_plain_file(item) for item in entry.iterdir())
    if entry.name == CACHE and entry.is_dir():
        return all(_cached(item) for item in entry.iterdir())
    return False


def _cached(item: Path) -> bool:
    """A compile cache entry (a folder of blobs; a blob, in an earlier release's cache), or the
    folder of the entries' locks and digests."""
    if item.is_symlink():
        return False
    if item.name == LOCKS and item.is_dir():
        return all(_lock_or_digests(lock) and _plain_file(lock) for lock in item.iterdir())
    if item.is_dir():
        return all(blob.suffix == ".blob" and _plain_file(blob) for blob in item.iterdir())
    return item.suffix == ".blob" and _plain_file(item)


def _lock_or_digests(path: Path) -> bool:
    return path.suffix == ".lock" or path.name.endswith((DIGESTS, DIGESTS + ".tmp"))


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _beside(dest: Path, suffix: str) -> Path:
    return dest.with_name(dest.name + suffix)


def _replace_files(staging: Path, dest: Path) -> None:
    """``staging``'s files moved into ``dest`` one by one (each os.replace atomic), the manifest
    taken away first and put back last: meanwhile a reader finds no install and waits on the
    lock (installed_faults: no readable manifest), never old and new files as one."""
    (dest / MANIFEST).unlink(missing_ok=True)
    for item in staging.iterdir():
        if item.name != MANIFEST:
            os.replace(item, dest / item.name)
    os.replace(staging / MANIFEST, dest / MANIFEST)
    staging.rmdir()


@contextlib.contextmanager
def _install_lock(lock: Path, dest: Path) -> Iterator[None]:
    """One install at a time per models directory (``lock``: ``<dest>.lock`` beside it, as
    ``.staging`` is, or in it for a mount point): installs started together shared
    ``.staging`` and removed each other's files mid-build (2 of 3 started at once exited 1,
    "No such file or directory")."""
    try:
        try:
            handle = lock.open("a")
        except FileNotFoundError:  # a MODEL_DIR whose parent is not there yet
            lock.parent.mkdir(parents=True, exist_ok=True)
            handle = lock.open("a")
    except OSError as exc:
        raise ModelDirUnwritable(f"cannot write the models to {dest}: {exc}") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, or the process ends
        yield


def _build(source: Path, staging: Path) -> None:
    """Verify every source file (held in memory, 11 MB in all), then convert each into a fresh
    ``staging`` directory, with their manifest. The converter reads a file: each verified
    source is written to ``SOURCES`` (inside the destination's own staging folder, so that a
    write failure there is the destination's, as any other) just before its conversion and
    deleted after it, largest first, so that the disk holds at most the IR (12.5 MB) and the
    smallest source beside it, as when the converter read the source folder itself."""
    verified = [(m, _verified_source(source, m)) for m in MODEL_FILES]
    shutil.rmtree(staging, ignore_errors=True)
    private = staging / SOURCES
    private.mkdir(parents=True)
    for model, data in sorted(verified, key=lambda pair: -len(pair[1])):
        copy = private / f"{model.ir}{Path(model.source).suffix}"
        copy.write_bytes(data)
        _convert(copy, model, staging)
        copy.unlink()
    private.rmdir()
    manifest = {**_expected_manifest(), "files": _digests(staging)}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
