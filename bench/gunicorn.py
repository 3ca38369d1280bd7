"""The one place tests and benchmarks start gunicorn: the command bin/entrypoint execs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

from bench.images import REPO

COMMAND = ("-m", "gunicorn", "-c", "facia_site/gunicorn.conf.py", "facia_site.wsgi")


def start_gunicorn(
    env: dict[str, str],
    out: IO[bytes] | IO[str] | int,
    tree: Path = REPO,
    python: str = sys.executable,
) -> subprocess.Popen[bytes]:
    """gunicorn as `make serve` runs it, from ``tree`` with ``python``; its output (stderr
    included) to ``out``. The caller waits for /status_check and stops it."""
    return subprocess.Popen(
        [python, *COMMAND], cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT
    )
