"""The Host header: a name outside ALLOWED_HOSTS gets a JSON 400 on the API (Django's HTML page
only in the admin), and compose and Kubernetes allow the names they give the service."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.http.request import split_domain_port, validate_host
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from facia_site.env import env_hosts
from tests.conftest import REPO

WRONG = "backend.internal:5001"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"), [("post", "/liveness"), ("get", "/status_check"), ("get", "/nowhere")]
)
def test_a_wrong_host_gets_a_json_400_naming_it(method: str, path: str) -> None:
    answer = getattr(Client(HTTP_HOST=WRONG), method)(path)
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/json"
    # Without its port: ALLOWED_HOSTS takes names, and refuses an entry with a port.
    assert answer.json() == {
        "error": "Host 'backend.internal' is not allowed: add it to the service's ALLOWED_HOSTS."
    }


@pytest.mark.django_db
def test_a_wrong_host_is_logged_once_without_a_traceback() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    watched = [
        logging.getLogger(name) for name in ("django.security.DisallowedHost", "django.request")
    ]
    for logger in watched:
        logger.addHandler(handler)
    try:
        Client(HTTP_HOST=WRONG).post("/liveness")
    finally:
        for logger in watched:
            logger.removeHandler(handler)
    assert [(r.name, r.exc_info) for r in records] == [("django.security.DisallowedHost", None)]
    assert WRONG in records[0].getMessage()


def requests_counted(endpoint: str, method: str, status: str) -> float:
    labels = {"endpoint": endpoint, "method": method, "status": status}
    return REGISTRY.get_sample_value("facia_http_requests_total", labels) or 0.0


@pytest.mark.django_db
def test_a_wrong_host_is_counted_as_such_in_the_metrics() -> None:
    """/metrics says ``host_not_allowed``, not ``unmatched`` (an unknown URL), for a 400 of a
    Host outside ALLOWED_HOSTS; an unknown URL on an allowed Host stays ``unmatched``."""
    before = [requests_counted(e, "POST", s) for e, s in METRIC_LABELS]
    Client(HTTP_HOST=WRONG).post("/liveness")
    Client().post("/nowhere")
    after = [requests_counted(e, "POST", s) for e, s in METRIC_LABELS]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 1]


METRIC_LABELS = [("host_not_allowed", "400"), ("unmatched", "400"), ("unmatched", "404")]


@pytest.mark.django_db
def test_the_admin_keeps_djangos_page_for_a_wrong_host() -> None:
    from django.conf import settings

    answer = Client(HTTP_HOST=WRONG).get(f"/{settings.ADMIN_URL}login/")
    assert answer.status_code == 400
    assert answer["Content-Type"].startswith("text/html")


def allowed(host: str, hosts: list[str]) -> bool:
    """As Django's HttpRequest.get_host judges a Host header (port and all)."""
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, hosts)


def _compose_default_hosts() -> list[str]:
    compose: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    value = compose["services"]["liveness"]["environment"]["ALLOWED_HOSTS"]
    found = re.fullmatch(r"\$\{ALLOWED_HOSTS:-([^}]*)\}", value)
    assert found, value
    return found.group(1).split(",")


def _k8s(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(Path(REPO / "deploy" / "k8s" / name).read_text())
    return loaded


def test_compose_allows_the_service_name_other_containers_call() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    hosts = _compose_default_hosts()
    for service in compose["services"]:
        if service != "db":
            assert allowed(f"{service}:5001", hosts), (service, hosts)
    assert allowed("127.0.0.1:5001", hosts) and allowed("localhost", hosts)


def test_kubernetes_allows_the_service_name_in_all_its_dns_forms() -> None:
    service = _k8s("service.yaml")["metadata"]
    hosts = _k8s("configmap.yaml")["data"]["ALLOWED_HOSTS"].split(",")
    name, namespace = service["name"], service["namespace"]
    port = _k8s("service.yaml")["spec"]["ports"][0]["port"]
    forms = [name, f"{name}.{namespace}", f"{name}.{namespace}.svc"]
    for form in [*forms, f"{name}.{namespace}.svc.cluster.local"]:
        assert allowed(form, hosts) and allowed(f"{form}:{port}", hosts), form
    probe = _k8s("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    probe_host = probe["readinessProbe"]["httpGet"]["httpHeaders"][0]["value"]
    assert allowed(probe_host, hosts)


@pytest.mark.django_db
def test_a_backend_calling_the_compose_service_name_is_answered() -> None:
    with override_settings(ALLOWED_HOSTS=_compose_default_hosts()):
        answer = Client(HTTP_HOST="liveness:5001").post(
            "/liveness", data="{}", content_type="application/json"
        )
    assert answer.status_code == 401  # past the Host check: the missing hash_id is refused


# deploy/k8s appends status.podIP, which an IPv6 cluster gives bare: Prometheus scrapes the pod
# at http://[fd00::5]:5001/metrics, and Django compares that Host's "[fd00::5]".
@pytest.mark.django_db
@pytest.mark.parametrize(("listed", "status"), [("fd00::5", 200), ("fd00::6", 400)])
def test_a_bare_ipv6_pod_address_admits_its_bracketed_host(
    monkeypatch: pytest.MonkeyPatch, listed: str, status: int
) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", f"facia-liveness,10.0.0.7,{listed}")
    hosts = env_hosts("ALLOWED_HOSTS", "127.0.0.1,localhost")
    assert hosts == ["facia-liveness", "10.0.0.7", f"[{listed}]"]
    with override_settings(ALLOWED_HOSTS=hosts):
        answer = Client(HTTP_HOST="[fd00::5]:5001").get("/metrics")
    assert answer.status_code == status
    if status == 400:  # refused for its Host, as any name not listed
        assert "Host '[fd00::5]' is not allowed" in answer.json()["error"]  # the entry to add


def test_the_settings_read_allowed_hosts_so(tmp_path: Path) -> None:
    code = "from django.conf import settings; print(settings.ALLOWED_HOSTS)"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "facia_site.settings", "SECRET_KEY": "k"}
    environ["ALLOWED_HOSTS"] = "localhost,fd00::5,[fd00::6],.example.com"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True
    )
    assert done.stdout.strip() == "['localhost', '[fd00::5]', '[fd00::6]', '.example.com']"
