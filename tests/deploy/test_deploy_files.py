"""Dockerfile (hadolint), compose file (compose-spec schema) and Kubernetes manifests
(Kubernetes OpenAPI schemas shipped in kubernetes-validate), all checked offline."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.urls import resolve

from tests.conftest import REPO, scratch_database, skip_or_fail
from tests.servers.entrypoint import entrypoint_env, run_entrypoint

BIN = Path(sys.executable).parent
K8S = REPO / "deploy" / "k8s"
# The oldest version whose schema knows every field we use (preStop sleep) and the newest.
K8S_VERSIONS = ("1.30.0", "1.37.0")
MEASURED_WORKER_MIB = 281  # a pod's worker, only `fast` tenants (deployment.md, Sizing)


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
    assert used <= documented


def test_env_example_keeps_compose_defaults() -> None:
    """deployment.md starts with `cp .env.example .env`: each value the example gives is the
    default compose.yaml has for it, so the copy sets only the secrets. The example's
    ALLOWED_HOSTS lacked compose's `liveness`: other containers calling the service by its
    name got 400."""
    text = (REPO / "compose.yaml").read_text()
    defaults = dict(re.findall(r"\$\{(\w+):-([^}]*)\}", text))
    example = dict(re.findall(r"^(\w+)=(.*)$", (REPO / ".env.example").read_text(), re.M))
    assert len(set(defaults) & set(example)) >= 10
    differ = {name: (example[name], defaults[name]) for name in set(defaults) & set(example)}
    assert {name: pair for name, pair in differ.items() if pair[0] != pair[1]} == {}


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
        "CronJob",
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
    for probe in ("readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/status_check"
    # Restarting a pod cures no database: liveness asks the process alone (a 70 s PostgreSQL
    # outage restarted every pod through /status_check), and the path is served.
    liveness_path = container["livenessProbe"]["httpGet"]["path"]
    assert liveness_path == "/healthz"
    assert resolve(liveness_path).url_name == "healthz"
    secret_keys = set(by_kind("Secret")["stringData"])
    for spec in (container, job["spec"]["template"]["spec"]["containers"][0]):
        refs = {
            e["valueFrom"]["secretKeyRef"]["key"]
            for e in spec["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert {"SECRET_KEY", "DATABASE_URL"} <= refs <= secret_keys
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert container["args"] == ["serve"]
    config = by_kind("ConfigMap")["data"]
    assert config["MIGRATE_ON_START"] == "0"
    workers = int(config["WEB_CONCURRENCY"])
    requests = container["resources"]["requests"]
    assert int(requests["memory"].removesuffix("Mi")) >= workers * MEASURED_WORKER_MIB
    assert float(requests["cpu"]) >= workers  # about one core per worker


def cron_jobs() -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == "CronJob"]


def test_cron_jobs_run_as_the_deployment_does() -> None:
    """Same image, ConfigMap and Secret as the API pods, non-root with a read-only root,
    bounded, never two at once."""
    (api,) = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    secret_keys = set(by_kind("Secret")["stringData"])
    assert cron_jobs()
    for cron in cron_jobs():
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"]
        (container,) = pod["containers"]
        assert container["image"] == api["image"]
        assert container["envFrom"] == api["envFrom"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert {"SECRET_KEY", "DATABASE_URL"} <= set(refs)
        assert {ref["key"] for ref in refs.values()} <= secret_keys
        assert {ref["name"] for ref in refs.values()} == {"facia-liveness"}
        assert container["securityContext"]["readOnlyRootFilesystem"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]


def scheduled_commands() -> set[str]:
    """The manage.py commands docs/operator/deployment.md tells an operator to schedule."""
    page = re.sub(r"\s+", " ", (REPO / "docs" / "operator" / "deployment.md").read_text())
    sentences = [s for s in re.split(r"(?<=[.)]) ", page) if re.search(r"\b[Ss]chedule\b", s)]
    return {name for s in sentences for name in re.findall(r"`manage\.py (\w+)", s)}


def steps_run(args: list[str], tmp_path: Path) -> list[str]:
    """The manage.py commands ``bin/entrypoint ARGS`` runs, as its JSON log lines name them,
    on a migrated SQLite database."""
    env = entrypoint_env(tmp_path, 0, LOG_FORMAT="json")
    assert run_entrypoint(env, "migrate").returncode == 0
    done = run_entrypoint(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return [r["name"].removeprefix("entrypoint.") for r in records if r["levelname"] == "INFO"]


def test_every_command_the_docs_schedule_has_a_cron_job(tmp_path: Path) -> None:
    """deployment.md said to schedule prune_checks and prune_sessions daily, and deploy/k8s
    had nothing that ran them: check records and sessions grew without end."""
    assert scheduled_commands() >= {"prune_checks", "prune_sessions"}
    run: list[str] = []
    for cron in cron_jobs():
        (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        (work := tmp_path / cron["metadata"]["name"]).mkdir()
        run += steps_run(container["args"], work)
    assert scheduled_commands() <= set(run)


def container_environment(
    container: dict[str, Any], secrets: dict[str, str], pod_ip: str = "10.1.2.3"
) -> dict[str, str]:
    """A container's environment as the kubelet makes it: each `envFrom` ConfigMap, then each
    `env` entry in order, `$(NAME)` expanded from what came before; Secret keys from
    ``secrets`` (an optional one that is missing is left out), the pod's IP given."""
    config = by_kind("ConfigMap")
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == config["metadata"]["name"]
        environment.update(config["data"])
    for entry in container.get("env", []):
        source = entry.get("valueFrom", {})
        if source.get("fieldRef", {}).get("fieldPath") == "status.podIP":
            environment[entry["name"]] = pod_ip
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if ref["key"] in secrets or not ref.get("optional"):
                environment[entry["name"]] = secrets[ref["key"]]
        elif "value" in entry:
            expand = re.sub(r"\$\((\w+)\)", lambda m: environment[m[1]], entry["value"])
            environment[entry["name"]] = expand
    return environment


def pod_environment(pod_ip: str) -> dict[str, str]:
    """The API pod's environment."""
    (container,) = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return container_environment(container, {"SECRET_KEY": "x", "DATABASE_URL": "x"}, pod_ip)


def test_a_pod_accepts_its_service_names_and_its_own_address() -> None:
    """observability.md: Prometheus scrapes each pod at its IP, which it sends as Host; the
    ConfigMap's ALLOWED_HOSTS named the Service only, so every scrape got 400."""
    hosts = pod_environment("10.1.2.3")["ALLOWED_HOSTS"].split(",")
    assert "10.1.2.3" in hosts
    assert "facia-liveness.facia.svc.cluster.local" in hosts and "localhost" in hosts


def kustomization() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return found


def objects_in(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def built() -> list[dict[str, Any]]:
    """What ``kubectl kustomize deploy/k8s`` gives, for this kustomization (resources, a
    namespace and images only): every listed file's objects, the namespaced ones in its
    namespace, each container of a listed image running the image named there."""
    found = []
    for name in kustomization()["resources"]:
        for doc in objects_in(K8S / name):
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kustomization()["namespace"]
            spec = pod_spec(doc)
            for container in spec.get("initContainers", []) + spec.get("containers", []):
                container["image"] = released(container["image"])
            found.append(doc)
    return found


def released(image: str) -> str:
    """``image`` as the kustomization's ``images`` rewrite it (name and tag)."""
    name = image.split("@")[0].rsplit(":", 1)[0] if "/" not in image else image
    for entry in kustomization().get("images", []):
        if entry["name"] == name:
            return f"{entry.get('newName', name)}:{entry['newTag']}"
    return image


def test_every_workload_runs_the_one_release_the_kustomization_names() -> None:
    """The manifests said facia-liveness:latest, and the docs said to apply them again for a
    new image: the unchanged spec started no rollout, a node that had pulled :latest kept it
    (the migration Job could migrate with the old code), and rollout undo went back to the
    same tag."""
    [entry] = kustomization()["images"]
    assert entry["name"] == "facia-liveness" and set(entry) <= {"name", "newName", "newTag"}
    assert entry["newTag"] not in {"", "latest"}
    for where, container in image_containers():
        assert ":" not in container["image"], f"{where}: tagged outside the kustomization"
    kinds = set()
    for doc in built():
        for container in pod_spec(doc).get("containers", []):
            if container["image"].startswith(entry.get("newName", entry["name"])):
                assert container["image"].endswith(f":{entry['newTag']}"), doc["kind"]
                kinds.add(doc["kind"])
    assert kinds == {"Deployment", "Job", "CronJob"}


def identities(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "")) for d in docs}


def test_kustomization_deploys_every_manifest_in_its_namespace() -> None:
    listed = kustomization()["resources"]
    assert len(set(listed)) == len(listed)
    examples = {"kustomization.yaml", "secret.example.yaml"}  # the Secret is made out of band
    assert set(listed) == {path.name for path in K8S.glob("*.yaml")} - examples
    namespace = kustomization()["namespace"]
    assert [doc["metadata"]["name"] for doc in objects_in(K8S / "namespace.yaml")] == [namespace]
    for name, doc in manifests():  # the files say it too, for kubectl apply -f
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == namespace, name
    assert "Job" in {doc["kind"] for doc in built()}  # the migration Job deploys with the rest


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_built_kustomization_matches_kubernetes_schemas(version: str) -> None:
    for doc in built():
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubectl_kustomize_builds_the_listed_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip_or_fail("kubectl not installed (Debian: kubernetes-client)")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    rendered = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert identities(rendered) == identities(built())
    assert len(rendered) == len(built())
    assert images_by_object(rendered) == images_by_object(built())  # kustomize's own rewrite


def images_by_object(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
    return {
        next(iter(identities([doc]))): [c["image"] for c in pod_spec(doc).get("containers", [])]
        for doc in docs
    }


def documented_deploy_commands() -> list[str]:
    """The commands of the Kubernetes section (docs/operator/deployment.md), continuation
    lines joined."""
    page = (REPO / "docs" / "operator" / "deployment.md").read_text()
    section = page.split("### Kubernetes", 1)[1].split("\n#", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the deployment page's Kubernetes section has no commands"
    return [line for line in block.group(1).replace("\\\n", " ").splitlines() if line]


def option(words: list[str], *names: str) -> str | None:
    found = [words[i + 1] for i, word in enumerate(words[:-1]) if word in names]
    return found[-1] if found else None


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pods' spec of a workload (a CronJob's through its Job template), else empty."""
    spec = doc.get("spec", {})
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    found: dict[str, Any] = spec.get("template", {}).get("spec", {})
    return found


def check_deploy_order(commands: list[str]) -> None:
    """Play the commands against an empty cluster: each uses only namespaces, Secrets and Jobs
    that earlier ones made, and the migration Job completes before the Deployment is applied."""
    namespaces: set[str] = set()
    secrets: set[tuple[str, str]] = set()
    jobs: set[str] = set()
    migrated = False
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "kubectl", command
        if "apply" in words:
            target = option(words, "-f", "-k") or ""
            docs = objects_in(REPO / target) if "-f" in words else built()
            if selector := option(words, "-l", "--selector"):
                key, value = selector.split("=")
                docs = [d for d in docs if d["metadata"].get("labels", {}).get(key) == value]
            assert docs, f"{command}: applies nothing"
            namespaces |= {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
            for doc in docs:
                used = doc["metadata"].get("namespace")
                assert used is None or used in namespaces, f"{command}: no namespace {used} yet"
                pods = pod_spec(doc)
                for ref in (
                    e["valueFrom"]["secretKeyRef"]
                    for c in pods.get("containers", [])
                    for e in c.get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})
                ):
                    assert ref.get("optional") or (used, ref["name"]) in secrets, command
                assert doc["kind"] != "Deployment" or migrated, f"{command}: before migrating"
            jobs |= {d["metadata"]["name"] for d in docs if d["kind"] == "Job"}
            continue
        namespace = option(words, "-n", "--namespace")
        assert namespace in namespaces, f"{command}: no namespace {namespace} yet"
        if "generic" in words:  # create secret generic NAME
            secrets.add((namespace, words[words.index("generic") + 1]))
        if "wait" in words and "--for=condition=complete" in words:
            (job,) = [w.removeprefix("job/") for w in words if w.startswith("job/")]
            assert job in jobs, f"{command}: no job {job} yet"
            migrated = True


def test_the_documented_deploy_order_works() -> None:
    commands = documented_deploy_commands()
    check_deploy_order(commands)
    assert commands[-1] == "kubectl apply -k deploy/k8s"


def test_deploy_order_check_rejects_the_secret_before_the_namespace() -> None:
    secret = "kubectl -n facia create secret generic facia-liveness --from-literal=SECRET_KEY=x"
    with pytest.raises(AssertionError, match="no namespace facia yet"):
        check_deploy_order([secret, "kubectl apply -k deploy/k8s"])  # the order documented before
    namespace = "kubectl apply -f deploy/k8s/namespace.yaml"
    with pytest.raises(AssertionError, match="before migrating"):
        check_deploy_order([namespace, secret, "kubectl apply -k deploy/k8s"])
    with pytest.raises(AssertionError, match="no namespace facia yet"):  # a selector drops it
        check_deploy_order(["kubectl apply -k deploy/k8s -l app.kubernetes.io/component=migrate"])


def image_containers() -> list[tuple[str, dict[str, Any]]]:
    """(file and kind, container) of every container under deploy/k8s that runs the project's
    image (init containers too)."""
    image = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = pod_spec(doc or {})
            for container in spec.get("initContainers", []) + spec.get("containers", []):
                if container["image"].split(":")[0] == image.split(":")[0]:
                    found.append((f"{path.name} {doc['kind']}", container))
    return found


def test_every_container_of_the_image_takes_the_configmap_and_the_secret() -> None:
    """The migration Job took SECRET_KEY and DATABASE_URL only: migrate ran under other
    settings than the service, an operator's ConfigMap never reached it."""
    config, secret = by_kind("ConfigMap")["metadata"]["name"], by_kind("Secret")
    containers = image_containers()
    assert {where.split()[1] for where, _ in containers} >= {"Deployment", "Job", "CronJob"}
    for where, container in containers:
        assert container.get("envFrom") == [{"configMapRef": {"name": config}}], where
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        assert {ref["key"] for ref in refs} == set(secret["stringData"]), where
        assert {ref["name"] for ref in refs} == {secret["metadata"]["name"]}, where


def test_every_compose_service_of_the_image_reads_the_env_file() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    ours = [s for s in services.values() if "build" in s or "facia" in s.get("image", "")]
    assert ours
    for service in ours:
        assert service.get("env_file") in (".env", [".env"])


def test_the_migration_jobs_environment_migrates(tmp_path: Path) -> None:
    """`bin/entrypoint migrate` under the Job's environment as the kubelet makes it (the
    ConfigMap, the Secret's keys, its own MIGRATE_VERBOSITY) on a fresh PostgreSQL database."""
    (container,) = by_kind("Job")["spec"]["template"]["spec"]["containers"]
    with scratch_database("deploy_job_env") as url:
        secrets = {
            "SECRET_KEY": "k8s-job-test-" + "x" * 40,
            "DATABASE_URL": url,
            "METRICS_TOKEN": "k8s-job-test-metrics-token",
        }
        assert set(secrets) == set(by_kind("Secret")["stringData"])
        job = container_environment(container, secrets)
        env = {
            "PATH": os.environ["PATH"],
            "PYTHON": sys.executable,
            "FACIA_VAR_DIR": str(tmp_path / "var"),  # the image's ENV, the Job's emptyDir
            **job,
        }
        done = run_entrypoint(env, *container["args"])
        assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert job["LOG_FORMAT"] == "json" and job["MIGRATE_ON_START"] == "0"
    assert any("Applying accounts.0001_initial" in r["message"] for r in records)
