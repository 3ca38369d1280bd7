"""/metrics on the real server (2 gunicorn workers, multiprocess mode) and its protection."""

import http.client
import urllib.request
from collections import defaultdict
from ipaddress import ip_network
from typing import Any

import pytest
import requests
from django.test import Client
from django.test.utils import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LIVE_JPG, SPOOF_JPG, data_uri
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system

TOKEN = "test-metrics-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(served: Served) -> Samples:
    with urllib.request.urlopen(f"{served.base}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples: Samples = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def post(served: Served, hash_id: str, image: str) -> int:
    body = {"hash_id": hash_id, "selfie_image": image}
    return requests.post(f"{served.base}/liveness", json=body, timeout=30).status_code


def test_verdicts_quota_and_stage_latencies(served: Served) -> None:
    name, hash_id = served.new_tenant(limit=2)
    before = scrape(served)
    statuses = [
        post(served, hash_id, data_uri(LIVE_JPG)),
        post(served, hash_id, "data:image/png;base64,bm90IGFuIGltYWdl"),  # not an image
        post(served, hash_id, data_uri(SPOOF_JPG)),
        post(served, hash_id, data_uri(LIVE_JPG)),  # over the limit (checked before the image)
        post(served, "wrong-hash-id", data_uri(LIVE_JPG)),
    ]
    assert statuses == [201, 400, 201, 429, 401]
    after = scrape(served)

    def verdicts(outcome: str, reason: str = "") -> float:
        labels = {"tenant": name, "outcome": outcome, "reason": reason}
        return value(after, "facia_liveness_verdicts_total", **labels)

    assert verdicts("live") == 1 and verdicts("spoof") == 1
    assert verdicts("refused", "quota") == 1 and verdicts("refused", "invalid_input") == 1
    assert value(after, "facia_tenant_quota_remaining", tenant=name) == 0
    assert value(after, "facia_tenant_requests_used", tenant=name) == 2
    assert value(after, "facia_tenant_request_limit", tenant=name) == 2
    for stage in ("decode", "detect", "classify", "total"):
        grew = value(after, "facia_liveness_stage_seconds_count", stage=stage) - value(
            before, "facia_liveness_stage_seconds_count", stage=stage
        )
        assert grew == 2, stage
    for status, count in (("201", 2), ("429", 1), ("400", 1), ("401", 1)):
        labels = {"endpoint": "liveness", "method": "POST", "status": status}
        grew = value(after, "facia_http_requests_total", **labels) - value(
            before, "facia_http_requests_total", **labels
        )
        assert grew == count, status


def test_a_deleted_tenants_counters_leave_the_scrape(served: Served) -> None:
    """Its verdict and refusal counters, labelled with its id and name, stayed in every scrape
    until the server restarted (prometheus_client keeps a label set in each worker's file);
    another tenant's, and the refusals of no tenant, stay."""
    gone, gone_id = served.new_tenant(limit=1)
    kept, kept_id = served.new_tenant(limit=1)
    for hash_id in (gone_id, kept_id):
        assert [post(served, hash_id, data_uri(LIVE_JPG)) for _ in range(2)] == [201, 429]
    assert post(served, "wrong-hash-id", data_uri(LIVE_JPG)) == 401
    before = scrape(served)
    for name in (gone, kept):
        assert value(before, "facia_liveness_verdicts_total", tenant=name) == 2
        assert value(before, "facia_liveness_refusals_total", tenant=name, status="429") == 1
    unknown = value(before, "facia_liveness_refusals_total", tenant_id="", status="401")
    assert unknown >= 1
    served.manage(
        "shell",
        "-c",
        f"from accounts.models import Tenant; Tenant.objects.get(name={gone!r}).delete()",
    )
    after = scrape(served)
    assert not [key for key in after if ("tenant", gone) in key[1]]
    assert value(after, "facia_liveness_verdicts_total", tenant=kept) == 2
    assert value(after, "facia_liveness_refusals_total", tenant=kept, status="429") == 1
    assert value(after, "facia_liveness_refusals_total", tenant_id="", status="401") == unknown


def lines_of(served: Served, name: str, tenant_id: str) -> list[dict[str, str]]:
    """The labels of each line of ``name`` naming ``tenant_id`` in one scrape, as Prometheus
    reads them: each line a series (two lines of the same labels, a scrape it refuses)."""
    with urllib.request.urlopen(f"{served.base}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("tenant_id") == tenant_id
    ]


def test_a_renamed_tenants_counters_carry_on_under_its_new_name(served: Served) -> None:
    """Labelled with the name of each request, a renamed tenant's counters were two series,
    its old name's (for good) and its new name's, one more with each rename. One series per
    tenant and labels now, under its current name, with the counts of every name it had: a
    series that only grows, as Prometheus reads a counter."""
    old, hash_id = served.new_tenant(limit=3)
    assert [post(served, hash_id, data_uri(LIVE_JPG)) for _ in range(2)] == [201, 201]
    verdicts, refusals = "facia_liveness_verdicts_total", "facia_liveness_refusals_total"
    (pk,) = {dict(key[1])["tenant_id"] for key in scrape(served) if ("tenant", old) in key[1]}
    new = f"{old}-renamed"
    served.manage(
        "shell",
        "-c",
        "from accounts.models import Tenant; "
        f"t = Tenant.objects.get(pk={pk}); t.name = {new!r}; t.full_clean(); t.save()",
    )
    assert [post(served, hash_id, data_uri(LIVE_JPG)) for _ in range(2)] == [201, 429]
    after = scrape(served)
    assert not [key for key in after if ("tenant", old) in key[1]]
    assert value(after, verdicts, tenant=new, outcome="live") == 3
    assert value(after, verdicts, tenant=new, outcome="refused", reason="quota") == 1
    assert value(after, refusals, tenant=new, status="429") == 1
    for name in (verdicts, refusals):
        lines = lines_of(served, name, pk)
        assert {labels["tenant"] for labels in lines} == {new}
        assert len({tuple(sorted(labels.items())) for labels in lines}) == len(lines)


def test_static_files_have_their_own_label(served: Served) -> None:
    before = scrape(served)
    asset = "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
    assert requests.get(served.base + asset, timeout=30).status_code == 200
    assert requests.get(served.base + "/no-such-page", timeout=30).status_code == 404
    after = scrape(served)

    def grew(endpoint: str, status: str) -> float:
        labels = {"endpoint": endpoint, "method": "GET", "status": status}
        total = "facia_http_requests_total"
        return value(after, total, **labels) - value(before, total, **labels)

    assert grew("static", "200") == 1
    assert grew("unmatched", "404") == 1 and grew("unmatched", "200") == 0


def get_metrics(served: Served, source: str, token: str | None = None) -> int:
    host, port = served.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request("GET", "/metrics", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_metrics_access_rules(served: Served) -> None:
    assert get_metrics(served, "127.0.0.1") == 200  # loopback, no token
    assert get_metrics(served, "127.0.0.1", "wrong") == 403  # a wrong token is never accepted
    assert get_metrics(served, "127.0.0.2") == 403  # not an allowed network
    assert get_metrics(served, "127.0.0.2", TOKEN) == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("settings_", "remote", "token", "status"),
    [
        ({}, "10.1.2.3", None, 403),
        ({"METRICS_ALLOWED_NETWORKS": (ip_network("10.0.0.0/8"),)}, "10.1.2.3", None, 200),
        ({"METRICS_ALLOWED_NETWORKS": ()}, "127.0.0.1", None, 403),
        ({"METRICS_TOKEN": "s3cret"}, "10.1.2.3", "s3cret", 200),
        ({"METRICS_TOKEN": ""}, "127.0.0.1", "anything", 403),
    ],
)
def test_access_settings(settings_: dict[str, Any], remote: str, token: str, status: int) -> None:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    with override_settings(**settings_):
        response = Client(REMOTE_ADDR=remote).get("/metrics", **headers)
    assert response.status_code == status


def _scraped(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = defaultdict(float)
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    return samples


@pytest.mark.usefixtures("warm_engine")
def test_telemetry_serves_metrics_with_readiness_and_quota(
    make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/metrics is telemetry's view; what it reads from above (liveness's readiness, console's
    quota gauges) is registered by those apps, and each scrape refreshes the readiness."""
    from django.urls import resolve

    from liveness import runtime

    assert resolve("/metrics").func.__module__ == "telemetry.views"
    make_tenant(name="scraped", request_limit=5)
    client = Client(REMOTE_ADDR="127.0.0.1")
    ready = _scraped(client)
    assert value(ready, "facia_worker_ready") == 1
    assert value(ready, "facia_tenant_quota_remaining", tenant="scraped") == 5
    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())  # this worker: not warm
    assert value(_scraped(client), "facia_worker_ready") == 0


def verdict_lines(client: Client, tenant_id: int) -> dict[str, Any]:
    """The live verdicts' lines of ``tenant_id`` in one scrape, by name, each once."""
    response = client.get("/metrics")
    lines = [
        sample
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name.startswith("facia_liveness_verdicts")
        and {"tenant_id": str(tenant_id), "outcome": "live"}.items() <= sample.labels.items()
    ]
    named = {sample.name: sample for sample in lines}
    assert len(named) == len(lines), lines
    return named


def test_one_series_per_tenant_in_a_single_process_created_the_earliest(make_tenant: Any) -> None:
    """Outside multiprocess mode (runserver, the test client) a counter writes ``_created`` too:
    of a renamed tenant's two, the scrape keeps the first, when its count began, not a sum."""
    from telemetry.metrics import observe_verdict

    tenant, _ = make_tenant(name="before rename")
    client = Client(REMOTE_ADDR="127.0.0.1")
    observe_verdict(tenant.pk, tenant.name, "live")
    before = verdict_lines(client, tenant.pk)
    tenant.name = "after rename"
    tenant.save()
    observe_verdict(tenant.pk, tenant.name, "live")
    after = verdict_lines(client, tenant.pk)
    total, created = "facia_liveness_verdicts_total", "facia_liveness_verdicts_created"
    assert sorted(after) == [created, total]
    assert {sample.labels["tenant"] for sample in after.values()} == {"after rename"}
    assert after[total].value == before[total].value + 1
    assert after[created].value == before[created].value
