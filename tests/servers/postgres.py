"""A private PostgreSQL cluster for fault tests (when the binaries are installed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.servers.processes import children, free_port


def postgres_bin() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


@dataclass
class PrivatePostgres:
    """A throw-away cluster of our own: restarting it disturbs nobody else's tests."""

    bindir: Path
    datadir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/facia"

    def pg_ctl(self, *args: str) -> None:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60", *args]
        subprocess.run(as_postgres(command), check=True, capture_output=True, timeout=90)

    def _launch(self, action: str) -> None:
        # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends.
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-m", "fast", "-o", options, "-l", str(self.datadir / "server.log"), action)

    def start(self) -> None:
        self._launch("start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self._launch("restart")

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server stopped (a database that went away), and started again afterwards
        whatever happens."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The whole server SIGSTOPped (a hung host: its kernel still answers TCP), and
        SIGCONTinued afterwards whatever happens. The postmaster first: stopped, it forks no
        backend that the list of its children would miss."""
        postmaster = int((self.datadir / "postmaster.pid").read_text().split()[0])
        stopped: list[int] = []
        try:
            os.kill(postmaster, signal.SIGSTOP)
            stopped.append(postmaster)
            for pid in children(postmaster):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres | str]:
    """A started cluster with a ``facia`` database, or a string saying why there is none."""
    bindir = postgres_bin()
    if bindir is None:
        yield "no PostgreSQL server binaries (initdb) on this machine"
        return
    root = Path(tempfile.mkdtemp(prefix="facia-pg-"))
    datadir = root / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        init = [str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres"]
        subprocess.run(as_postgres([*init, "--no-sync"]), check=True, capture_output=True)
    except (subprocess.CalledProcessError, LookupError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        yield f"cannot create a private PostgreSQL cluster: {exc}"
        return
    cluster = PrivatePostgres(bindir, datadir, free_port())
    try:
        cluster.start()
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port)]
            + ["-U", "postgres", "facia"],
            check=True,
            capture_output=True,
        )
        yield cluster
    finally:
        subprocess.run(
            as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
