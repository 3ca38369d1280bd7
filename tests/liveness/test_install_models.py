"""manage.py install_models."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError

from ml.install import MANIFEST, models_ready
from ml.registry import MODEL_FILES
from tests.conftest import REPO, skip_or_fail
from tests.conftest import run_command as run
from tests.servers.disk import small_tmpfs


def test_install_models_is_idempotent(warm_engine: None) -> None:
    assert run("install_models")[-1] == f"Models already up to date in {settings.MODEL_DIR}"


def test_install_models_reports_a_bad_source(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="MODEL_SOURCE"):
        run("install_models", "--source", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "m"))


def test_install_models_reports_a_model_dir_it_cannot_write(tmp_path: Path) -> None:
    """A MODEL_DIR that cannot be created (read-only, or under a file): one clear error, not
    an OSError's traceback, and nothing left half-installed."""
    (tmp_path / "a-file").write_text("")
    dest = tmp_path / "a-file" / "models"
    with pytest.raises(CommandError, match=f"cannot write the models to {dest}: .*Not a dir"):
        run("install_models", "--dest", str(dest))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.slow
def test_installs_started_together_all_succeed(tmp_path: Path) -> None:
    """Workers or containers starting at once on one MODEL_DIR: each install waits for the one
    running, then finds the models current. They shared ``.staging`` and removed each other's
    files mid-build: 2 of 3 exited 1."""
    dest = tmp_path / "models"
    command = [sys.executable, "manage.py", "install_models", "--dest", str(dest)]
    installs = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(3)
    ]
    outputs = [install.communicate(timeout=300)[0].decode() for install in installs]
    assert [install.returncode for install in installs] == [0, 0, 0], outputs
    assert sum("Models installed" in output for output in outputs) == 1, outputs
    assert models_ready(dest)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def test_install_models_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """manage.py install_models into someone's folder (--dest holding a database, holding the
    source, the caller's own directory): it deleted the folder's files and said "Models
    installed". Each is refused, exit 2, in one line, with nothing written or deleted."""
    precious, wrap, caller = tmp_path / "precious", tmp_path / "wrap", tmp_path / "caller"
    (precious / "sub").mkdir(parents=True)
    (precious / "db.sqlite3").write_text("important")
    for model in MODEL_FILES:
        (wrap / "models" / model.source).parent.mkdir(parents=True, exist_ok=True)
        (wrap / "models" / model.source).write_bytes(
            (settings.MODEL_SOURCE / model.source).read_bytes()
        )
    caller.mkdir()
    (caller / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    for cwd, args, said in [
        (
            REPO,
            ["--source", str(settings.MODEL_SOURCE), "--dest", str(precious)],
            f"{precious}: it holds files the installer did not write "
            "(precious/db.sqlite3, precious/sub)",
        ),
        (
            REPO,
            ["--source", str(wrap / "models"), "--dest", str(wrap)],
            f"{wrap}: it overlaps the source {wrap / 'models'}",
        ),
        (
            caller,
            ["--source", str(settings.MODEL_SOURCE), "--dest", "."],
            f"{caller}: it holds files the installer did not write (caller/notes.txt)",
        ),
    ]:
        command = [sys.executable, str(REPO / "manage.py"), "install_models", *args]
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith(f"CommandError: refusing to install the models into {said}")
        assert done.stderr.endswith("(set MODEL_DIR or pass --dest)\n") and done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
    assert _tree(tmp_path) == before


@pytest.mark.slow  # 5 s: two installs
def test_install_models_repairs_and_upgrades_its_own_folder(tmp_path: Path) -> None:
    """Its own folder, corrupted or from an earlier release, is still replaced."""
    dest = tmp_path / "models"
    assert run("install_models", "--dest", str(dest))[-1] == f"Models installed in {dest}"
    (dest / MODEL_FILES[0].ir).with_suffix(".bin").write_bytes(b"corrupt")
    assert run("install_models", "--dest", str(dest))[-1] == f"Models installed in {dest}"
    assert models_ready(dest)
    manifest = (dest / MANIFEST).read_text()
    (dest / MANIFEST).write_text(manifest.replace('"openvino": "', '"openvino": "0.'))
    assert run("install_models", "--dest", str(dest))[-1] == f"Models installed in {dest}"
    assert models_ready(dest)


@pytest.mark.slow  # 6 s: two installs
def test_install_models_on_a_full_disk_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    """A disk with 1 MiB free, the IR needing 12.5 MB: OpenVINO reports the failed write as
    "RuntimeError: basic_ios::clear: iostream error", which went out as a traceback with an
    empty ``models.staging`` left behind. One line naming the cause, exit 1, nothing left;
    once the space is freed the same command installs."""
    disk = tmp_path / "disk"
    with small_tmpfs(disk, "16m") as why_not:
        if why_not:
            skip_or_fail(why_not)
        filler = disk / "filler"
        filler.write_bytes(bytes(15 << 20))
        dest = disk / "models"
        command = [sys.executable, "manage.py", "install_models", "--dest", str(dest)]
        done = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            1,
            "",
            f"CommandError: cannot write the models to {dest}: [Errno 28] No space left on "
            "device (set MODEL_DIR or pass --dest)\n",
        )
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "models.lock"]
        filler.unlink()
        assert run("install_models", "--dest", str(dest))[-1] == f"Models installed in {dest}"
        assert models_ready(dest)
