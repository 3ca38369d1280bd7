"""A real server started through bin/entrypoint (as the image does): its environment, the
wait for /status_check, ``entrypoint manage`` and the running server (``Served``)."""

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.gunicorn import output_of
from tests.conftest import REPO
from tests.servers.processes import STARTUP_S, free_port, stop

ENTRYPOINT = REPO / "bin" / "entrypoint"


def wait_live(base: str, process: subprocess.Popen[bytes], timeout: float = STARTUP_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode} before it was live")
        try:
            with urllib.request.urlopen(f"{base}/status_check", timeout=30) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass  # not listening yet, or still warming (503)
        time.sleep(0.2)
    raise AssertionError("server never became live")


def run_entrypoint(
    env: dict[str, str], *args: str, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``bin/entrypoint ARGS`` to its end (a start that must fail, a one-off step), run by
    ``prefix`` where given (tests.servers.readonly)."""
    return subprocess.run(
        [*prefix, str(ENTRYPOINT), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def entrypoint_manage(env: dict[str, str], *args: str) -> str:
    """``bin/entrypoint manage ARGS`` (as the image runs commands); its standard output."""
    return output_of([str(ENTRYPOINT), "manage", *args], env, timeout=120)


@dataclass
class Served:
    base: str
    env: dict[str, str]
    log_path: Path
    pid: int  # gunicorn's master: bin/entrypoint execs it

    def manage(self, *args: str) -> str:
        return entrypoint_manage(self.env, *args)

    def new_tenant(self, limit: int | None = None, *options: str) -> tuple[str, str]:
        """(name, hash_id) of a fresh tenant; ``options`` of create_tenant, e.g.
        ``"--challenge", "head_turn"``."""
        name = f"t-{uuid.uuid4().hex[:10]}"
        args = ["create_tenant", name] + ([] if limit is None else ["--limit", str(limit)])
        args += options
        return name, self.manage(*args).strip().splitlines()[-1]

    def log_text(self) -> str:
        return self.log_path.read_text()


def entrypoint_env(work: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "LOG_FORMAT": "json",
        **extra,
    }


@contextmanager
def entrypoint_server(work: Path, port: int | None = None, **extra: str) -> Iterator[Served]:
    """bin/entrypoint serve on ``port`` (default: a free one) with ``work``'s own SQLite
    database, until exit; ``base`` at its HOST (default 127.0.0.1)."""
    port = free_port() if port is None else port
    env = entrypoint_env(work, port, **extra)
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ENTRYPOINT), "serve"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            host = env["HOST"].strip("[]")
            base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
            wait_live(base, process)
            yield Served(base, env, log_path, process.pid)
        finally:
            stop(process)
