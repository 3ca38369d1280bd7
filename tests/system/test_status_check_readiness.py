"""Readiness of every gunicorn worker (issue 9, item 2): a worker whose engine cannot load or
warm never serves (the master stops, exit code 3), each worker's readiness is a gauge, and a
worker is unready until the database has every migration of its release."""

import os
import shutil
import signal
from pathlib import Path

import pytest
import requests
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from liveness import runtime
from tests.release import RELEASE_LEAVES
from tests.servers.clients import create_tenant, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn, migrated_env, start
from tests.servers.processes import STARTUP_S, manage, until

pytestmark = pytest.mark.system

WORKER_BOOT_ERROR = 3  # gunicorn's Arbiter.WORKER_BOOT_ERROR: the master halts on it


def _broken_model_dir(work: Path) -> Path:
    """The installed models with one weights file cut in half (as a bad copy would be)."""
    models = work / "models"
    # The installed models wherever this run keeps them (FACIA_VAR_DIR, MODEL_DIR).
    shutil.copytree(settings.MODEL_DIR, models, ignore=shutil.ignore_patterns("cache"))
    weights = models / "minifasnet_v2.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return models


def test_a_worker_whose_engine_fails_to_load_stops_the_server(tmp_path: Path) -> None:
    env = migrated_env(tmp_path, 2, MODEL_DIR=str(_broken_model_dir(tmp_path)), LOG_FORMAT="plain")
    body = selfie_body(create_tenant(env, "broken-engine"))
    server = start(env, tmp_path)
    answers, code = server.answers_until_exit(
        lambda: requests.post(f"{server.base}/liveness", data=body, timeout=(10, 60))
    )
    text = server.log.read_text()
    assert code == WORKER_BOOT_ERROR, text[-3000:]
    assert answers == []  # no worker ever accepted a request, so never a 500
    assert "engine load or warm-up failed in worker" in text
    assert "Worker failed to boot" in text


def _ready_by_pid(base: str) -> dict[int, float]:
    text = requests.get(f"{base}/metrics", timeout=30).text
    return {
        int(sample.labels["pid"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "facia_worker_ready"
        for sample in family.samples
    }


def _all_ready(server: Gunicorn) -> bool:
    """Every live worker, and only those, reports 1 (one still warming reports 0)."""
    return _ready_by_pid(server.base) == {pid: 1.0 for pid in server.workers()}


def test_each_worker_has_a_readiness_gauge(tmp_path: Path) -> None:
    with gunicorn(tmp_path, workers=2) as server:
        workers = server.workers()
        until(lambda: _all_ready(server), timeout=STARTUP_S)
        server.kill_worker(workers[0])
        # The dead worker's sample is gone (child_exit), its replacement reports itself.
        until(lambda: _all_ready(server), timeout=STARTUP_S)
        assert workers[0] not in _ready_by_pid(server.base)
        assert len(_ready_by_pid(server.base)) == 2


def _engine_loaded(pid: int) -> bool:
    """Whether ``pid`` has mapped OpenVINO's library: it has imported the engine, which the
    worker does once Django is set up (post_fork), never the master before the fork."""
    return "libopenvino" in Path(f"/proc/{pid}/maps").read_text()


def test_a_replacement_worker_is_scraped_before_it_loads_its_engine(tmp_path: Path) -> None:
    """A replacement's gauge was set only after Django's set-up (~1 s): meanwhile /metrics
    lacked the worker. Now it reports 0 from the start of post_fork, before Django's set-up
    and so before the engine's libraries: the first scrape that lists it comes before them."""
    with gunicorn(tmp_path, workers=2) as server:
        workers = server.workers()
        assert not _engine_loaded(server.process.pid)
        os.kill(workers[0], signal.SIGKILL)
        found: set[int] = set()

        def forked() -> bool:
            found.update(set(server.workers()) - set(workers))
            return bool(found)

        until(forked, every=0.005)
        (replacement,) = found
        scraped: dict[int, float] = {}
        loaded_when_asked: list[bool] = []

        def listed() -> bool:
            # Read before the scrape is sent: on a busy machine its answer can take longer
            # than the replacement's Django set-up, so a read after it said nothing.
            loaded_when_asked[:] = [_engine_loaded(replacement)]
            scraped.clear()
            scraped.update(_ready_by_pid(server.base))
            return replacement in scraped

        until(listed, timeout=STARTUP_S, every=0.005)
        assert loaded_when_asked == [False]
        assert scraped[replacement] == 0
        until(lambda: _all_ready(server), timeout=STARTUP_S)
        assert _engine_loaded(replacement)


def test_a_manage_command_leaves_no_readiness_sample(tmp_path: Path) -> None:
    """Only serving workers report readiness: a command run with the metrics directory set
    (bin/entrypoint's install_models before gunicorn) writes no gauge file there."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    manage({**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, "check")
    assert list(metrics_dir.iterdir()) == []


def _status_text(server: Gunicorn) -> str:
    """/status_check's body; "" while the server is not listening yet."""
    assert server.process.poll() is None, server.log.read_text()[-3000:]
    try:
        return requests.get(f"{server.base}/status_check", timeout=30).text
    except requests.ConnectionError:
        return ""


def _not_migrated(env: dict[str, str]) -> str:
    """/status_check's 503 body for the migrations ``migrate --plan`` lists (one line each,
    their operations indented below)."""
    plan = manage(env, "migrate", "--plan").splitlines()[1:]
    return runtime.NOT_MIGRATED.format(sum(1 for line in plan if line and line[0] != " "))


def test_an_unmigrated_database_is_unready_until_migrated(tmp_path: Path) -> None:
    """Pods start with MIGRATE_ON_START=0 and may come up before the migration Job has run.
    The readiness probe's query of the tenants raised out of post_fork: every worker failed
    to boot and the master stopped. Now the workers wait, unready, saying how many
    migrations are missing, and serve once migrated."""
    env = migrated_env(tmp_path, 1)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'not-yet-migrated.sqlite3'}"
    server = start(env, tmp_path)
    try:
        until(lambda: _status_text(server) not in ("", runtime.STARTING), timeout=STARTUP_S)
        unready = requests.get(f"{server.base}/status_check", timeout=30)
        assert (unready.status_code, unready.text) == (503, _not_migrated(env))
        manage(env, "migrate", "-v0")
        until(lambda: server.status() == 200, timeout=STARTUP_S)
        hash_id = create_tenant(env, "migrated-late")
        reply = requests.post(f"{server.base}/liveness", data=selfie_body(hash_id), timeout=60)
        assert reply.status_code == 201, reply.text
    finally:
        server.stop()


def test_the_previous_releases_database_is_unready_until_migrated(tmp_path: Path) -> None:
    """A rolling upgrade: a new pod starts on the previous release's database before the
    migration Job has run (or after it failed). Its tenants' read and a check row's insert
    succeed there, so it answered 200, took traffic, and failed the requests that reach a new
    column (POST /sessions: 503). Now it is unready, saying how many migrations are missing,
    and serves once they are applied."""
    env = migrated_env(tmp_path, 1)
    hash_id = create_tenant(env, "before-upgrade")
    for app, migration in RELEASE_LEAVES.items():
        manage(env, "migrate", app, migration, "-v0")
    missing = _not_migrated(env)
    server = start(env, tmp_path)
    try:
        until(lambda: _status_text(server) not in ("", runtime.STARTING), timeout=STARTUP_S)
        unready = requests.get(f"{server.base}/status_check", timeout=30)
        assert (unready.status_code, unready.text) == (503, missing)
        manage(env, "migrate", "-v0")
        until(lambda: server.status() == 200, timeout=STARTUP_S)
        opened = requests.post(f"{server.base}/sessions", json={"hash_id": hash_id}, timeout=30)
        assert opened.status_code == 201, opened.text
        reply = requests.post(f"{server.base}/liveness", data=selfie_body(hash_id), timeout=60)
        assert reply.status_code == 201, reply.text
    finally:
        server.stop()
