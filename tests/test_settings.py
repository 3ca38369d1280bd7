"""Settings helpers: the generated secret key file."""

import stat
from pathlib import Path

import pytest

from facia_site.settings import load_secret_key


def test_secret_key_generated_once_with_private_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / "secret_key"
    first = load_secret_key(path)
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(path) == first
    assert list(tmp_path.iterdir()) == [path]


def test_secret_key_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert load_secret_key(tmp_path / "secret_key") == "from-env"
    assert not (tmp_path / "secret_key").exists()
