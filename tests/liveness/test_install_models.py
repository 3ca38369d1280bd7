"""manage.py install_models."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError

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
