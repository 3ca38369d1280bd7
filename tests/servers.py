"""Real servers for fault tests: gunicorn on a free port, a private PostgreSQL cluster,
raw-socket HTTP, and the database's own view of the quota ledger."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.gunicorn import start_gunicorn
from tests.conftest import LIVE_JPG, REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (gunicorn drains), then SIGKILL if it has not exited in 45 s; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=45)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def create_tenant(
    env: dict[str, str], name: str, limit: int | None = None, rate: int | None = None
) -> str:
    args = ["create_tenant", name] + ([] if limit is None else ["--limit", str(limit)])
    args += [] if rate is None else ["--rate-limit", str(rate)]
    return manage(env, *args).strip().splitlines()[-1]


def selfie_body(hash_id: str) -> bytes:
    image = base64.b64encode(LIVE_JPG.read_bytes()).decode()
    return json.dumps({"hash_id": hash_id, "selfie_image": image}).encode()


def until(condition: object, timeout: float = 60.0, every: float = 0.1) -> None:
    """Poll ``condition()`` until true; a guard against hangs, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def away_from_window_edge(seconds: int) -> None:
    """Start a sequence early in a fixed window, so it cannot straddle two windows."""
    into = time.time() % seconds
    if into > seconds - 5:
        time.sleep(seconds - into + 0.05)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def status(self) -> int:
        return requests.get(f"{self.base}/status_check", timeout=5).status_code

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker and wait until the master has reaped and replaced it."""
        count = len(self.workers())
        os.kill(pid, signal.SIGKILL)
        until(lambda: pid not in self.workers(), timeout=60, every=0.02)
        self.wait_workers(count)

    def wait_workers(self, count: int) -> None:
        until(lambda: len(self.workers()) == count and self.status() == 200, timeout=120)

    def stop(self) -> int:
        return stop(self.process)


@contextmanager
def gunicorn(work: Path, workers: int, **extra_env: str) -> Iterator[Gunicorn]:
    """gunicorn like `make serve`, with ``work``'s own SQLite database unless DATABASE_URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "TMPDIR": str(work / "tmp"),
        **extra_env,
    }
    (work / "tmp").mkdir(exist_ok=True)
    manage(env, "migrate", "-v0")
    log = work / "gunicorn.log"
    with log.open("wb") as out:
        process = start_gunicorn(env, out)
    server = Gunicorn(process, port, env, log)
    try:
        server.wait_workers(workers)
        yield server
    finally:
        server.stop()


# --- raw HTTP ------------------------------------------------------------------------------


def request_head(port: int, length: int | None, request_id: str = "") -> bytes:
    lines = [
        "POST /liveness HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
        "Connection: close",
    ]
    if request_id:
        lines.append(f"X-Request-ID: {request_id}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, object] | None]:
    """Status and JSON body of the response; (0, None) when the connection died first."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    if not data:
        return 0, None
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


def connect(port: int, timeout: float = 60) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def owner_of(sock: socket.socket, server: Gunicorn) -> int:
    """The worker that accepted ``sock``'s connection (waits until one has)."""
    client_port = sock.getsockname()[1]
    found: list[int] = []

    def accepted() -> bool:
        inode = _server_side_inode(server.port, client_port)
        if not inode:
            return False
        for pid in server.workers():
            fds = Path(f"/proc/{pid}/fd")
            for fd in fds.iterdir():
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        found.append(pid)
                        return True
                except OSError:
                    continue
        return False

    until(accepted, timeout=30, every=0.02)
    return found[0]


def _server_side_inode(server_port: int, client_port: int) -> int:
    """Inode of the server end of a loopback connection; 0 while it is not yet accepted."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return inode
    return 0


# --- the ledger, read straight from the database ------------------------------------------


@dataclass(frozen=True)
class Ledger:
    requests_used: int
    consuming: list[str]  # request ids of checks that took a unit
    refused: list[str]  # request ids of checks refused by the engine (no unit)


def ledger(database_url: str, tenant_name: str) -> Ledger:
    query_used = "SELECT requests_used FROM accounts_tenant WHERE name = {p}"
    query_checks = (
        "SELECT c.request_id, c.refused_code FROM liveness_livenesscheck c "
        "JOIN accounts_tenant t ON t.id = c.tenant_id WHERE t.name = {p}"
    )
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            (used,) = db.execute(query_used.format(p="?"), [tenant_name]).fetchone()
            rows = db.execute(query_checks.format(p="?"), [tenant_name]).fetchall()
    else:
        import psycopg

        with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as db:
            row = db.execute(query_used.format(p="%s"), [tenant_name]).fetchone()
            assert row is not None, tenant_name
            used = row[0]
            rows = db.execute(query_checks.format(p="%s"), [tenant_name]).fetchall()
    return Ledger(
        used,
        [request_id for request_id, code in rows if not code],
        [request_id for request_id, code in rows if code],
    )


# --- a private PostgreSQL cluster ----------------------------------------------------------


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


# --- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    request_id: str
    status: int  # 0: the connection failed or was cut


def post(base: str, body: bytes, request_id: str) -> Outcome:
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    try:
        response = requests.post(f"{base}/liveness", data=body, headers=headers, timeout=60)
    except requests.RequestException:
        return Outcome(request_id, 0)
    return Outcome(request_id, response.status_code)


def burst(base: str, body: bytes, clients: int, tag: str) -> list[Outcome]:
    """``clients`` requests released at the same instant, one thread each."""
    barrier = threading.Barrier(clients)
    outcomes: list[Outcome] = []

    def one(index: int) -> None:
        barrier.wait()
        outcomes.append(post(base, body, f"{tag}-{index}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def statuses(outcomes: list[Outcome]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return dict(sorted(counts.items()))


def assert_ledger_exact(outcomes: list[Outcome], book: Ledger) -> None:
    """Every 201 a client saw has exactly one consuming record; requests_used counts them all."""
    seen = [o.request_id for o in outcomes if o.status == 201]
    assert all(book.consuming.count(request_id) == 1 for request_id in seen)
    assert book.requests_used == len(book.consuming)
