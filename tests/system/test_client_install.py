"""An integrator's install: the client's wheel into a fresh venv (nothing else in it), its
console script against the real server; and `pip install .` of the repository root."""

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import LIVE_JPG, REPO
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system


def pip(python: Path | str, *args: str) -> None:
    command = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(command, check=True, timeout=300, capture_output=True, text=True)


def build_wheel(source: Path, out: Path) -> Path:
    """A wheel built offline with this venv's setuptools and wheel (requirements-dev)."""
    pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(out))
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding only pip and the client (built from a copy, so the
    checkout gets no build/ directory)."""
    work = tmp_path_factory.mktemp("client-install")
    source = work / "facia_client"
    shutil.copytree(REPO / "facia_client", source, ignore=shutil.ignore_patterns("__pycache__"))
    wheel = build_wheel(source, work / "dist")
    venv.create(work / "venv", with_pip=True)
    pip(work / "venv" / "bin" / "python", "install", "--no-deps", "--no-index", str(wheel))
    return work / "venv" / "bin"


def test_console_script_help(installed: Path) -> None:
    done = subprocess.run(
        [installed / "facia-client", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and "usage: facia-client" in done.stdout


def test_installed_package_is_typed(installed: Path) -> None:
    code = "import facia_client, pathlib; print(pathlib.Path(facia_client.__file__).parent)"
    where = subprocess.run(
        [installed / "python", "-c", code], capture_output=True, text=True, timeout=30, cwd="/"
    )
    package = Path(where.stdout.strip())
    assert package.parent.name == "site-packages" and (package / "py.typed").is_file()


def test_console_script_against_the_server(installed: Path, served: Served) -> None:
    _, hash_id = served.new_tenant()
    done = subprocess.run(
        [installed / "facia-client", str(LIVE_JPG), "--url", served.base, f"--hash-id={hash_id}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # not the checkout: the installed package must be what runs
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["is_live"] == 1


def test_repository_root_builds_without_packages(tmp_path: Path) -> None:
    """The root pyproject.toml, beside the flat layout's top-level packages, builds (setuptools
    refused it before) and ships none of them: the service runs from a checkout."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    for package in ("accounts", "liveness", "facia_client", "tests"):
        (root / package).mkdir()
        (root / package / "__init__.py").touch()
    wheel = build_wheel(root, tmp_path / "dist")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")]
