"""Dockerfile (hadolint), compose file (compose-spec schema) and Kubernetes manifests
(Kubernetes OpenAPI schemas shipped in kubernetes-validate), all checked offline."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO
from tests.servers.entrypoint import Served
from tests.servers.processes import free_port

BIN = Path(sys.executable).parent
K8S = REPO / "deploy" / "k8s"
# The oldest version whose schema knows every field we use (preStop sleep) and the newest.
K8S_VERSIONS = ("1.30.0", "1.37.0")
MEASURED_WORKER_MIB = 250


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dockerfile_passes_hadolint() -> None:
    done = hadolint(REPO / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n")
    done = hadolint(bad)
    assert done.returncode == 1
    assert "DL3007" in done.stdout and "DL3008" in done.stdout


def test_dockerfile_shape() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [name for _, name in stages] == ["models", "build", "runtime"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r'^HEALTHCHECK .*CMD \["bin/healthcheck"\]$', text, re.M)
    assert 'ENTRYPOINT ["bin/entrypoint"]' in text
    assert "bin/entrypoint install-models" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "tests", ".env"} <= set(ignored)


def test_compose_matches_the_compose_spec() -> None:
    done = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(REPO / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_layout_and_documented_env() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["liveness"]
    assert set(compose["services"]) == {"db", "liveness"}
    assert service["ports"] == ["${FACIA_BIND:-127.0.0.1}:${FACIA_PORT:-5001}:5001"]
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert service["build"]["additional_contexts"]["models"].startswith("${FACIA_MODEL_SOURCE")
    text = (REPO / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    documented = set(re.findall(r"^(\w+)=", (REPO / ".env.example").read_text(), re.M))
    assert used - {"FACIA_VERSION"} <= documented


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_kubernetes_schemas(version: str) -> None:
    kinds = set()
    for _, doc in manifests():
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error
        kinds.add(doc["kind"])
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "Job",
        "ConfigMap",
    } <= kinds


def test_schema_validation_rejects_mistakes() -> None:
    deployment = by_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def by_kind(kind: str) -> dict[str, Any]:
    (doc,) = [doc for _, doc in manifests() if doc["kind"] == kind]
    return doc


def test_manifests_fit_together() -> None:
    deployment, job = by_kind("Deployment"), by_kind("Job")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert by_kind("Service")["spec"]["selector"].items() <= labels.items()
    assert (
        by_kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    )
    assert (
        by_kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"]
        == (deployment["metadata"]["name"])
    )
    (container,) = pod["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/status_check"
    secret_keys = set(by_kind("Secret")["stringData"])
    for spec in (container, job["spec"]["template"]["spec"]["containers"][0]):
        refs = {e["valueFrom"]["secretKeyRef"]["key"] for e in spec["env"] if "valueFrom" in e}
        assert {"SECRET_KEY", "DATABASE_URL"} <= refs <= secret_keys
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert container["args"] == ["serve"]
    config = by_kind("ConfigMap")["data"]
    assert config["MIGRATE_ON_START"] == "0"
    workers = int(config["WEB_CONCURRENCY"])
    requests = container["resources"]["requests"]
    assert int(requests["memory"].removesuffix("Mi")) >= workers * MEASURED_WORKER_MIB
    assert float(requests["cpu"]) >= workers  # about one core per worker
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    assert all((K8S / name).is_file() for name in kustomization["resources"])


def test_healthcheck_script(served: Served) -> None:
    port = served.base.rsplit(":", 1)[1]
    ok = subprocess.run(
        [sys.executable, str(REPO / "bin" / "healthcheck")],
        env={"PORT": port},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0
    down = subprocess.run(
        [sys.executable, str(REPO / "bin" / "healthcheck")],
        env={"PORT": str(free_port())},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert down.returncode == 1
