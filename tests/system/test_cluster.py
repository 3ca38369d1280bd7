"""Scale-out on one machine: two instances sharing one PostgreSQL database behind nginx.

- Quota stays exact across instances under concurrent load (L successes, N-L 429s).
- Stopping one instance mid-load (SIGTERM, then SIGKILL of its whole process group) loses
  no completed check: every 201 the client saw has its LivenessCheck row.

Figures are printed (`make cluster-test` shows them) and kept in artifacts/cluster.json.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import LIVE_JPG, REPO, SPOOF_JPG, data_uri, scratch_database, skip_or_fail
from tests.servers.entrypoint import ENTRYPOINT, entrypoint_env, entrypoint_manage, wait_live
from tests.servers.processes import free_port, stop

pytestmark = pytest.mark.system

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = REPO / "deploy" / "nginx" / "facia-lb.conf"
FIGURES: dict[str, dict[str, object]] = {}


@dataclass
class Instance:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ENTRYPOINT), "serve"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for SIGKILL of all of it
            )

    def wait_live(self) -> None:
        assert self.process is not None
        wait_live(f"http://127.0.0.1:{self.port}", self.process)


@dataclass
class Cluster:
    url: str
    db_url: str
    instances: list[Instance]
    env: dict[str, str]
    temp: Path
    lb: subprocess.Popen[bytes]

    def reconfigure(self, down: tuple[int, ...] = ()) -> None:
        """Re-render nginx.conf and reload; returns once only new nginx workers remain."""
        listen = int(self.url.rsplit(":", 1)[1])
        conf = render_nginx(self.temp, listen, [i.port for i in self.instances], down)
        old = nginx_workers(self.lb.pid)
        subprocess.run([NGINX, "-s", "reload", "-c", str(conf)], check=True, timeout=30)
        while nginx_workers(self.lb.pid) & old or not nginx_workers(self.lb.pid):
            time.sleep(0.05)

    def tenant(self, limit: int) -> tuple[str, str]:
        name = f"cluster-{uuid.uuid4().hex[:8]}"
        out = entrypoint_manage(self.env, "create_tenant", name, "--limit", str(limit))
        return name, out.strip().splitlines()[-1]

    def counts(self, name: str) -> tuple[int, int, set[str]]:
        """(requests_used, rows with a verdict, request ids of those rows) for a tenant."""
        import psycopg

        with psycopg.connect(self.db_url.replace("postgres://", "postgresql://")) as db:
            row = db.execute(
                "select requests_used from accounts_tenant where name = %s", (name,)
            ).fetchone()
            assert row is not None, name
            (used,) = row
            ids = db.execute(
                "select c.request_id from liveness_livenesscheck c join accounts_tenant t "
                "on t.id = c.tenant_id where t.name = %s and c.is_live is not null",
                (name,),
            ).fetchall()
        return used, len(ids), {row[0] for row in ids}


def nginx_workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()


@pytest.fixture(scope="module")
def nginx() -> str:
    if not Path(NGINX).is_file():
        skip_or_fail(
            "nginx is not installed: `make cluster-test` installs Debian's nginx-light "
            "(apt-get install nginx-light) when it can"
        )
    return NGINX


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with scratch_database("facia_cluster") as url:
        yield url


def render_nginx(temp: Path, listen: int, ports: list[int], down: tuple[int, ...] = ()) -> Path:
    upstreams = "\n".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s"
        + (" down;" if port in down else ";")
        for port in ports
    )
    text = (
        TEMPLATE.read_text()
        .replace("@PREFIX@", str(temp))
        .replace("@LISTEN@", f"127.0.0.1:{listen}")
        .replace("@UPSTREAMS@", upstreams)
    )
    conf = temp / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture(scope="module")
def cluster(nginx: str, database: str) -> Iterator[Cluster]:
    # Outside pytest's 0700 tree: nginx's workers (nobody) need to reach their temp paths.
    temp = Path(tempfile.mkdtemp(prefix="facia-cluster-"))
    temp.chmod(0o755)
    env = entrypoint_env(temp, 0, DATABASE_URL=database, WEB_CONCURRENCY="1")
    subprocess.run([str(ENTRYPOINT), "migrate"], cwd=REPO, env=env, check=True, timeout=120)
    instances = []
    for name in ("a", "b"):
        port = free_port()
        metrics_dir = temp / f"metrics-{name}"
        instance_env = {
            **env,
            "PORT": str(port),
            "MIGRATE_ON_START": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        instances.append(Instance(name, port, instance_env, temp / f"{name}.log"))
    for instance in instances:
        instance.start()
    listen = free_port()
    conf = render_nginx(temp, listen, [i.port for i in instances])
    subprocess.run([nginx, "-t", "-c", str(conf)], check=True, capture_output=True, timeout=30)
    lb = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
    try:
        for instance in instances:
            instance.wait_live()
        yield Cluster(f"http://127.0.0.1:{listen}", database, instances, env, temp, lb)
    finally:
        lb.terminate()
        lb.wait(timeout=30)
        for instance in instances:
            if instance.process is not None and instance.process.poll() is None:
                stop(instance.process)
        shutil.rmtree(temp, ignore_errors=True)


@dataclass
class Reply:
    request_id: str
    status: int
    upstream: str


def drive(
    cluster: Cluster,
    hash_id: str,
    count: int,
    concurrency: int,
    after: tuple[int, Callable[[], None]] | None = None,
) -> list[Reply]:
    """POST ``count`` checks through nginx; call ``after[1]`` once ``after[0]`` have returned."""
    bodies = [data_uri(LIVE_JPG), data_uri(SPOOF_JPG)]

    def one(index: int) -> Reply:
        request_id = f"cl-{uuid.uuid4().hex[:12]}-{index}"
        body = {"hash_id": hash_id, "selfie_image": bodies[index % 2]}
        try:
            response = requests.post(
                f"{cluster.url}/liveness",
                json=body,
                headers={"X-Request-ID": request_id},
                timeout=60,
            )
        except requests.RequestException:
            return Reply(request_id, 0, "")
        return Reply(request_id, response.status_code, response.headers.get("X-Upstream", ""))

    replies = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in as_completed([pool.submit(one, i) for i in range(count)]):
            replies.append(future.result())
            if after is not None and len(replies) == after[0]:
                after[1]()
    return replies


def record(phase: str, replies: list[Reply], used: int, rows: int, **extra: object) -> None:
    statuses = Counter(reply.status for reply in replies)
    upstreams = Counter(r.upstream for r in replies if r.status == 201)
    FIGURES[phase] = {
        "requests": len(replies),
        "statuses": dict(sorted(statuses.items())),
        "successes_by_upstream": dict(upstreams),
        "requests_used": used,
        "checks_recorded": rows,
        **extra,
    }
    print(f"\n{phase}: {json.dumps(FIGURES[phase])}")
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "cluster.json").write_text(json.dumps(FIGURES, indent=2))


def test_quota_is_exact_across_instances(cluster: Cluster) -> None:
    limit, count = 20, 48
    name, hash_id = cluster.tenant(limit)
    replies = drive(cluster, hash_id, count, concurrency=8)
    used, rows, ids = cluster.counts(name)
    record("quota", replies, used, rows, limit=limit)
    statuses = Counter(reply.status for reply in replies)
    assert statuses == {201: limit, 429: count - limit}
    assert used == rows == limit
    assert {r.request_id for r in replies if r.status == 201} == ids
    # Both instances served checks.
    assert len({r.upstream for r in replies if r.status == 201}) == 2


def test_sigterm_mid_load_loses_nothing(cluster: Cluster) -> None:
    victim = cluster.instances[0]
    process = victim.process
    assert process is not None
    name, hash_id = cluster.tenant(1000)
    replies = drive(cluster, hash_id, 60, concurrency=6, after=(15, lambda: process.terminate()))
    exit_code = process.wait(timeout=60)
    used, rows, ids = cluster.counts(name)
    succeeded = {r.request_id for r in replies if r.status == 201}
    record("sigterm", replies, used, rows, victim_exit_code=exit_code)
    assert succeeded <= ids  # every 201 the client saw was recorded
    assert used == rows  # graceful: in-flight checks completed and were counted once
    assert {r.status for r in replies} <= {201, 502}
    victim.start()
    victim.wait_live()


def test_sigkill_mid_load_loses_no_completed_check(cluster: Cluster) -> None:
    victim = cluster.instances[0]
    process = victim.process
    assert process is not None
    name, hash_id = cluster.tenant(1000)

    def kill() -> None:
        os.killpg(process.pid, signal.SIGKILL)

    replies = drive(cluster, hash_id, 60, concurrency=6, after=(15, kill))
    process.wait(timeout=30)
    used, rows, ids = cluster.counts(name)
    succeeded = {r.request_id for r in replies if r.status == 201}
    record("sigkill", replies, used, rows, units_without_verdict=used - rows)
    assert succeeded <= ids  # every 201 the client saw was recorded
    assert {r.status for r in replies} <= {201, 502}
    # The unit and the record are one transaction: a check killed at any point left both or
    # neither (its client got a 502 either way).
    assert used == rows
    victim.start()
    victim.wait_live()


def test_drained_restart_has_no_errors(cluster: Cluster) -> None:
    """The rolling-restart procedure: mark the instance down in nginx, reload, then stop it."""
    victim = cluster.instances[0]
    process = victim.process
    assert process is not None
    name, hash_id = cluster.tenant(1000)

    def drain_and_stop() -> None:
        cluster.reconfigure(down=(victim.port,))
        process.terminate()

    replies = drive(cluster, hash_id, 60, concurrency=6, after=(15, drain_and_stop))
    process.wait(timeout=60)
    used, rows, ids = cluster.counts(name)
    record("drained_sigterm", replies, used, rows)
    assert Counter(r.status for r in replies) == {201: 60}
    assert used == rows == 60 and {r.request_id for r in replies} == ids
    victim.start()
    victim.wait_live()
    cluster.reconfigure()
