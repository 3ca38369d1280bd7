"""manage.py install_models."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError

from ml.install import models_ready
from tests.conftest import REPO
from tests.conftest import run_command as run


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
