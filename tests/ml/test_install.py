"""install_models: checksums enforced, idempotent, and the result loads."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ml.engine import LivenessEngine
from ml.errors import ModelFault, ModelInstallError
from ml.install import MANIFEST, install_models, installed_faults, models_ready, sha256_of
from ml.registry import MODEL_FILES
from tests.conftest import skip_or_fail
from tests.ml.conftest import MODEL_SOURCE
from tests.ml.corrupt import WEIGHTS, corrupt_copy, flip_bytes


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
    shared by whoever mounts it."""
    assert install_models(MODEL_SOURCE, mount_point) is True
    assert models_ready(mount_point)
    good = sha256_of(mount_point / WEIGHTS)
    flip_bytes(mount_point / WEIGHTS)
    assert install_models(MODEL_SOURCE, mount_point) is True
    assert sha256_of(mount_point / WEIGHTS) == good and models_ready(mount_point)
    assert not (mount_point / ".staging").exists() and (mount_point / ".install.lock").exists()
    assert not (mount_point.parent / "mounted.staging").exists()
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
