"""install_models: checksums enforced, idempotent, and the result loads."""

from __future__ import annotations

import errno
import fcntl
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ml import install
from ml.engine import LivenessEngine
from ml.errors import ModelFault, ModelInstallError
from ml.install import (
    MANIFEST,
    _raise_write_failure,
    install_models,
    installed_faults,
    models_ready,
    sha256_of,
)
from ml.registry import MODEL_FILES, ModelSpec
from tests.conftest import skip_or_fail
from tests.ml.conftest import MODEL_SOURCE
from tests.ml.corrupt import WEIGHTS, corrupt_copy, flip_bytes
from tests.servers.disk import small_tmpfs


def test_install_is_idempotent_and_loadable(tmp_path: Path) -> None:
    dest = tmp_path / "models"
    assert install_models(MODEL_SOURCE, dest) is True
    assert models_ready(dest)
    manifest_before = (dest / MANIFEST).stat().st_mtime_ns
    assert install_models(MODEL_SOURCE, dest) is False
    assert (dest / MANIFEST).stat().st_mtime_ns == manifest_before
    LivenessEngine.load(dest).warm_up()


def _copy_sources(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    for model in MODEL_FILES:
        (source / model.source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MODEL_SOURCE / model.source, source / model.source)
    return source


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path)
    tampered = source / MODEL_FILES[1].source
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelInstallError, match="checksum mismatch"):
        install_models(source, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_missing_model_is_refused(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path)
    (source / MODEL_FILES[0].source).unlink()
    with pytest.raises(ModelInstallError, match="missing"):
        install_models(source, tmp_path / "models")


def test_engine_refuses_an_empty_model_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match="install_models"):
        LivenessEngine.load(tmp_path)


@pytest.mark.slow  # 9 s at load 8: copies and loads the models
def test_a_corrupt_installed_file_is_reinstalled(tmp_path: Path) -> None:
    """Bytes flipped in an installed weights file, size kept: install_models checked only the
    sources and did nothing; it now rebuilds the file, and the result scores."""
    dest = tmp_path / "models"
    install_models(MODEL_SOURCE, dest)
    good = sha256_of(dest / WEIGHTS)
    flip_bytes(dest / WEIGHTS)
    assert not models_ready(dest)
    assert installed_faults(dest) == [f"{WEIGHTS} differs from the digest recorded at install"]
    assert install_models(MODEL_SOURCE, dest) is True
    assert sha256_of(dest / WEIGHTS) == good
    assert models_ready(dest)
    LivenessEngine.load(dest).warm_up()


@pytest.mark.slow  # two installs
def test_a_model_dir_that_is_a_symlink_is_repaired_where_it_points(tmp_path: Path) -> None:
    """MODEL_DIR a symlink to the models: the staging directory could not be renamed over it
    (Not a directory), on every start, so a corrupt file was never repaired."""
    real, link = tmp_path / "volume" / "models", tmp_path / "models"
    install_models(MODEL_SOURCE, real)
    link.symlink_to(real)
    good = sha256_of(real / WEIGHTS)
    flip_bytes(real / WEIGHTS)
    assert install_models(MODEL_SOURCE, link) is True
    assert link.is_symlink() and link.resolve() == real
    assert sha256_of(link / WEIGHTS) == good and models_ready(link)


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted on a directory, as a volume mounted at MODEL_DIR is (root only)."""
    point = tmp_path / "mounted"
    point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # not root, or no CAP_SYS_ADMIN: fails under CI
        skip_or_fail(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


@pytest.mark.slow  # two installs
def test_a_model_dir_that_is_a_mount_point_is_installed_and_repaired_in_it(
    mount_point: Path,
) -> None:
    """A volume mounted at MODEL_DIR (containers sharing their models): renaming the staging
    directory over a mount point fails (EBUSY), so every start failed, and a repair emptied
    the mount first. Its files are replaced in it, with the lock and the staging inside it,
    shared by whoever mounts it; what else the volume holds (lost+found) is kept."""
    (mount_point / "lost+found").mkdir()
    assert install_models(MODEL_SOURCE, mount_point) is True
    assert models_ready(mount_point)
    good = sha256_of(mount_point / WEIGHTS)
    flip_bytes(mount_point / WEIGHTS)
    assert install_models(MODEL_SOURCE, mount_point) is True
    assert sha256_of(mount_point / WEIGHTS) == good and models_ready(mount_point)
    assert not (mount_point / ".staging").exists() and (mount_point / ".install.lock").exists()
    assert not (mount_point.parent / "mounted.staging").exists()
    assert (mount_point / "lost+found").is_dir()
    LivenessEngine.load(mount_point).warm_up()


def test_the_engine_refuses_a_corrupt_installed_file(model_dir: Path, tmp_path: Path) -> None:
    copy = corrupt_copy(model_dir, tmp_path / "models")
    with pytest.raises(ModelInstallError, match=f"{WEIGHTS} differs from the digest"):
        LivenessEngine.load(copy)


@pytest.mark.slow  # 11 s at load 8: copies and loads the models
def test_a_model_giving_nan_never_gives_a_score(
    model_dir: Path, tmp_path: Path, dev_image: Callable[[str], bytes]
) -> None:
    """A model broken before its digest was recorded loads, but its NaN never becomes a
    verdict, and warm-up (so a worker's start) fails on it."""
    engine = LivenessEngine.load(corrupt_copy(model_dir, tmp_path / "models", record_digest=True))
    with pytest.raises(ModelFault, match="minifasnet_v2 gave a non-finite score"):
        engine.check(dev_image("live/minivision_1.jpg"))
    with pytest.raises(ModelFault, match="minifasnet_v2"):
        engine.inspect(engine.decode(dev_image("spoof/minivision_3.jpg")))
    with pytest.raises(ModelFault):
        engine.warm_up()


@pytest.mark.slow  # 6.6 s at load 8: copies and loads the models
def test_a_detector_giving_nan_fails_warm_up(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("cache", "int8"))
    flip_bytes(copy / "yunet.bin", count=256, at=0.97)  # in the output heads' weights
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["yunet.bin"] = sha256_of(copy / "yunet.bin")
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFault, match="face detector gave non-finite outputs"):
        LivenessEngine.load(copy).warm_up()


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder): what a refusal must keep."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def test_a_folder_the_installer_did_not_write_is_refused_and_kept(tmp_path: Path) -> None:
    """A --dest holding someone's files (a database, a folder): the install deleted them all
    before moving the models in, and said "Models installed"."""
    dest = tmp_path / "precious"
    (dest / "sub").mkdir(parents=True)
    (dest / "db.sqlite3").write_text("important")
    (dest / "sub" / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    refused = f"refusing to install the models into {dest}: it holds files the installer did"
    with pytest.raises(ModelInstallError, match=rf"{refused} not write \(precious/db.sqlite3, "):
        install_models(MODEL_SOURCE, dest)
    assert _tree(tmp_path) == before  # no lock or staging folder beside it either


@pytest.mark.parametrize(
    "stray",
    [
        "notes.txt",
        "cache/photo.jpg",
        "int8/notes.txt",
        ".staging/db.sqlite3",
        "minifasnet_v2.bin/x",
        "cache/.locks/x.txt",
    ],
)
def test_a_stray_file_among_the_installers_own_is_refused(tmp_path: Path, stray: str) -> None:
    """Only what the installer (or the engine: its compile cache, bench.quantize's int8) wrote
    is replaced; anything else in the folder stops the install, the folder kept."""
    dest = tmp_path / "models"
    for name in ("manifest.json", "yunet.xml", "cache/1.blob", "cache/.locks/a.lock"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if not (dest / name).exists():
            (dest / name).write_text("{}")
    (dest / stray).parent.mkdir(parents=True, exist_ok=True)
    (dest / stray).write_text("mine")
    before = _tree(tmp_path)
    with pytest.raises(ModelInstallError, match=r"refusing .*: it holds files the .* \(models/"):
        install_models(MODEL_SOURCE, dest)
    assert _tree(tmp_path) == before


def test_a_staging_folder_beside_that_is_not_the_installers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models.staging").mkdir()
    (tmp_path / "models.staging" / "db.sqlite3").write_text("important")
    before = _tree(tmp_path)
    with pytest.raises(ModelInstallError, match=r"did not write \(models.staging/db.sqlite3\)"):
        install_models(MODEL_SOURCE, tmp_path / "models")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("source_at", "dest_at"),
    [("wrap/models", "wrap"), ("models", "models/ir"), ("models", "models")],
    ids=["source-in-dest", "dest-in-source", "same"],
)
def test_a_destination_overlapping_the_source_is_refused(
    tmp_path: Path, source_at: str, dest_at: str
) -> None:
    """--dest holding the source (or in it, or it): the source models were deleted."""
    source = tmp_path / source_at
    source.parent.mkdir(parents=True, exist_ok=True)
    _copy_sources(tmp_path).rename(source)
    before = _tree(tmp_path)
    with pytest.raises(ModelInstallError, match=f"refusing .*: it overlaps the source {source}"):
        install_models(source, tmp_path / dest_at)
    assert _tree(tmp_path) == before


def test_an_interrupted_install_of_its_own_is_repaired(tmp_path: Path) -> None:
    """Killed mid-install: files replaced in place with no manifest yet, and half-built staging
    folders (in it, as in a mount point, and beside it). All of it is the installer's."""
    dest = tmp_path / "models"
    install_models(MODEL_SOURCE, dest)
    (dest / MANIFEST).unlink()
    flip_bytes(dest / WEIGHTS)
    for staging in (dest / ".staging", tmp_path / "models.staging"):
        staging.mkdir()
        shutil.copy(dest / "yunet.xml", staging / "yunet.xml")
    (dest / ".install.lock").touch()
    assert install_models(MODEL_SOURCE, dest) is True
    assert models_ready(dest) and not (tmp_path / "models.staging").exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [MANIFEST, *(f"{m.ir}.{ext}" for m in MODEL_FILES for ext in ("xml", "bin"))]
    )


@pytest.mark.slow  # 8 s: installs twice, compiles the models into the cache
def test_an_upgrade_replaces_an_earlier_releases_models(tmp_path: Path) -> None:
    """An earlier release's folder: another OpenVINO, a model this release dropped (named in
    its manifest), the engine's compile cache and int8 models. All of it is replaced."""
    dest = tmp_path / "models"
    install_models(MODEL_SOURCE, dest)
    LivenessEngine.load(dest).warm_up()  # fills dest/cache
    assert any((dest / "cache").rglob("*.blob")) and (dest / "cache" / ".locks").is_dir()
    manifest = json.loads((dest / MANIFEST).read_text())
    manifest["openvino"] = "2024.0.0"
    manifest["models"]["retired"] = {"source": "retired.onnx", "sha256": "0" * 64, "prepare": ""}
    for ext in ("xml", "bin"):
        (dest / f"retired.{ext}").write_text("old")
        manifest["files"][f"retired.{ext}"] = sha256_of(dest / f"retired.{ext}")
    (dest / MANIFEST).write_text(json.dumps(manifest))
    (dest / "int8").mkdir()
    (dest / "int8" / MANIFEST).write_text("{}")
    (dest / "int8" / "yunet.xml").write_text("old")
    assert installed_faults(dest) == ["built from other model files or by another OpenVINO version"]
    assert install_models(MODEL_SOURCE, dest) is True
    assert models_ready(dest) and not (dest / "retired.xml").exists()
    LivenessEngine.load(dest).warm_up()


def test_a_failed_save_is_blamed_on_the_disk_only_when_the_disk_refuses(tmp_path: Path) -> None:
    """A RuntimeError from OpenVINO's save becomes the disk's OSError only where writing as
    much fails too; a folder with room returns it as the model's own failure, probe removed."""
    failure = RuntimeError("basic_ios::clear: iostream error")
    with small_tmpfs(tmp_path / "disk", "2m") as why_not:
        if why_not:
            skip_or_fail(why_not)
        _raise_write_failure(tmp_path / "disk", 1 << 20, failure)
        assert list((tmp_path / "disk").iterdir()) == []
        with pytest.raises(OSError, match="No space left on device") as raised:
            _raise_write_failure(tmp_path / "disk", 3 << 20, failure)
        assert raised.value.errno == errno.ENOSPC and raised.value.__cause__ is failure
        assert list((tmp_path / "disk").iterdir()) == []


def test_what_an_install_under_way_removes_is_not_taken_for_a_strangers(tmp_path: Path) -> None:
    """An install holding the lock removes and renames the folder while another start looks at
    it: what it removes meanwhile (here a stray the test removes while holding the lock) does
    not refuse the start, which waits for the lock and looks again."""
    dest = tmp_path / "models"
    assert install_models(MODEL_SOURCE, dest)
    (dest / MANIFEST).write_text("{}")  # an earlier release's: to be installed again
    stray = dest / "half-written.tmp"
    stray.write_text("the other install's")
    lock = tmp_path / "models.lock"
    results: list[object] = []
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = threading.Thread(target=_install_into, args=(dest, results))
        started.start()
        while started.is_alive() and not _waits_for_flock(lock):
            time.sleep(0.01)  # polling for the event: the start waiting for the lock
        stray.unlink()
    started.join()
    assert results == [True]
    assert not installed_faults(dest)


def _install_into(dest: Path, results: list[object]) -> None:
    try:
        results.append(install_models(MODEL_SOURCE, dest))
    except ModelInstallError as exc:
        results.append(exc)


def _waits_for_flock(lock: Path) -> bool:
    """Whether a process waits for an flock on ``lock`` (/proc/locks lists the waiters, ->)."""
    inode = f":{lock.stat().st_ino} "
    lines = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and "FLOCK" in line and inode in line for line in lines)


def test_a_source_swapped_after_its_check_is_not_what_gets_installed(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converter reads the bytes that were hashed: a source file replaced between its
    check and its conversion (here by another model, just before the first conversion) is
    never installed unchecked."""
    source = _copy_sources(tmp_path)
    v2 = next(m for m in MODEL_FILES if m.ir == "minifasnet_v2")
    v1se = next(m for m in MODEL_FILES if m.ir == "minifasnet_v1se")
    convert = install._convert

    def swap_then_convert(path: Path, model: ModelSpec, dest: Path) -> None:
        target = source / v2.source
        if target.read_bytes() != (source / v1se.source).read_bytes():
            target.chmod(0o644)
            shutil.copy(source / v1se.source, target)
        convert(path, model, dest)

    monkeypatch.setattr(install, "_convert", swap_then_convert)
    dest = tmp_path / "models"
    assert install_models(source, dest) is True
    assert sha256_of(source / v2.source) != v2.sha256  # swapped during the install
    # the weights, not the XML: OpenVINO numbers its generated layer names per process
    assert sha256_of(dest / "minifasnet_v2.bin") == sha256_of(model_dir / "minifasnet_v2.bin")


def test_no_usable_temporary_folder_does_not_stop_an_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verified copies of the sources are written in the destination's staging folder,
    whose write failures are the destination's (one line), not in TMPDIR: a TMPDIR that is
    not there (a read-only container) changes nothing."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmpdir"))
    dest = tmp_path / "models"
    assert install_models(MODEL_SOURCE, dest) is True
    assert models_ready(dest) and not (tmp_path / "models.staging").exists()
    assert not (tmp_path / "no-such-tmpdir").exists()
