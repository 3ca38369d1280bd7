"""docs/integrator/client.md installs the client from a checkout with `pip install
./facia_client`: setuptools builds in that folder, and what it leaves there (build/, the
egg-info) is ignored by git, so the checkout stays clean: no
`facia_client/build/` (a copy of the package) for `git status` to list. Built here from a copy
of the folder, offline with this venv's setuptools (tests/system/test_client_install.py installs
and runs the wheel); each file it wrote is asked of git's ignore rules for the checkout."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CLIENT_MD = REPO / "docs" / "integrator" / "client.md"


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*") if path.is_file()}


def test_pip_install_of_the_client_folder_leaves_only_ignored_files(tmp_path: Path) -> None:
    assert "pip install ./facia_client" in CLIENT_MD.read_text(encoding="utf-8")
    source = tmp_path / "facia_client"
    shutil.copytree(REPO / "facia_client", source, ignore=shutil.ignore_patterns("__pycache__"))
    before = files_under(source)
    build = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "wheel"]
    build += ["--no-deps", "--no-build-isolation", str(source), "-w", str(tmp_path / "dist")]
    subprocess.run(build, check=True, timeout=300, capture_output=True)
    written = sorted(f"facia_client/{path}" for path in files_under(source) - before)
    assert any("/build/" in path for path in written), written  # setuptools built in place
    ask = ["git", "-C", str(REPO), "check-ignore", "--no-index", "--verbose", "--non-matching"]
    answer = subprocess.run([*ask, *written], capture_output=True, text=True, timeout=60)
    # --non-matching --verbose: a path no rule ignores comes back as "::\tPATH".
    unmatched = [line for line in answer.stdout.splitlines() if line.startswith("::")]
    listed = [line.split("\t", 1)[1] for line in unmatched]
    assert listed == [], f"git status would list: {listed}"
