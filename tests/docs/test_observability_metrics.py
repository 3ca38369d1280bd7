"""docs/operator/observability.md's metrics table is what GET /metrics exposes: after a live
check and a refused hash_id (Django's test client, the real engine), every `facia_` metric
scraped has its row and every row's metric is scraped, each with the labels the row names."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from facia_site.worker import OVER_CLIENT_CAP
from telemetry.metrics import count_worker_refusal
from tests.conftest import LIVE_JPG, REPO, Post, data_uri

PAGE = REPO / "docs" / "operator" / "observability.md"
# Labels gunicorn's multiprocess collector adds (one sample per worker; `liveall` mode).
PER_WORKER = {"facia_worker_ready": {"pid"}}
ROW = re.compile(r"^\| (`facia_\w+`(?:, `facia_\w+`)*) \| (.*) \|$", re.M)


def documented() -> dict[str, set[str]]:
    """Each metric of the table and its label names: the cell's backticked words outside
    parentheses and before a colon (what follows names values: `stage`: `decode`, ...)."""
    table: dict[str, set[str]] = {}
    for names, cell in ROW.findall(PAGE.read_text(encoding="utf-8")):
        while re.search(r"\([^()]*\)", cell):
            cell = re.sub(r"\([^()]*\)", "", cell)
        labels = set(re.findall(r"`(\w+)`", cell.split(":", 1)[0]))
        for name in re.findall(r"`(facia_\w+)`", names):
            table[name] = labels
    return table


def scraped(text: str) -> dict[str, set[str]]:
    """Each facia_ metric as the table names it (a counter with its _total) and the labels
    of its samples (a histogram's `le` left out). The `_created` series the single-process
    registry adds are left out: gunicorn's multiprocess collector has none."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("facia_") and not family.name.endswith("_created"):
            name = f"{family.name}_total" if family.type == "counter" else family.name
            labels = {label for sample in family.samples for label in sample.labels}
            found[name] = labels - {"le"}
    return found


@pytest.mark.django_db
def test_the_metrics_table_is_what_metrics_exposes(
    client: Any, warm_engine: None, make_tenant: Any, post_liveness: Post
) -> None:
    _, hash_id = make_tenant(request_limit=10)  # the quota gauges: tenants with a limit
    assert (
        post_liveness({"hash_id": hash_id, "selfie_image": data_uri(LIVE_JPG)}).status_code == 201
    )
    assert post_liveness({"hash_id": "unknown", "selfie_image": "x"}).status_code == 401
    # The gunicorn worker's own refusal, as it counts one: the test client never reaches it.
    count_worker_refusal(OVER_CLIENT_CAP.status, OVER_CLIENT_CAP.reason)
    response = client.get("/metrics")
    assert response.status_code == 200
    exposed, table = scraped(response.content.decode()), documented()
    assert len(table) >= 9
    assert sorted(set(exposed) ^ set(table)) == []
    differ = {
        name: (labels, table[name])
        for name, labels in exposed.items()
        if labels | PER_WORKER.get(name, set()) != table[name]
    }
    assert differ == {}


def documented_values(metric: str, label: str) -> set[str]:
    """The backticked values the row of ``metric`` gives for ``label``: the words of the
    parenthesis that follows the label's name, before any colon (what follows explains)."""
    cell = next(
        cell for names, cell in ROW.findall(PAGE.read_text(encoding="utf-8")) if metric in names
    )
    start = cell.index(f"`{label}` (") + len(f"`{label}` (")
    depth, end = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(cell[end], 0)
        end += 1
    inner = cell[start : end - 1]
    while re.search(r"\([^()]*\)", inner):
        inner = re.sub(r"\([^()]*\)", "", inner)
    return set(re.findall(r"`(\w+)`", inner.split(":", 1)[0]))


def verdict_counts(client: Any, tenant_id: int) -> dict[str, float]:
    """facia_liveness_verdicts_total of one tenant id, by outcome, as /metrics shows it."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples if family.name == "facia_liveness_verdicts" else []:
            if sample.name.endswith("_total") and sample.labels["tenant_id"] == str(tenant_id):
                outcome = sample.labels["outcome"]
                counts[outcome] = counts.get(outcome, 0.0) + sample.value
    return counts


@pytest.mark.django_db
def test_a_held_selfie_counts_as_the_documented_outcome(
    client: Any, warm_engine: None, make_tenant: Any
) -> None:
    """A when_unsure selfie held (a band of 10 logits holds any score) counts one verdict whose
    outcome is a value the row names (`unsure`); the row names the outcomes the code counts."""
    tenant, secret = make_tenant(challenge="when_unsure", challenge_band=10.0)
    before = verdict_counts(client, tenant.pk)  # the registry is the process's: a delta
    opened = client.post("/sessions", {"hash_id": secret}, content_type="application/json")
    sid, token = opened.json()["session_id"], opened.json()["token"]
    selfie = client.post(
        f"/sessions/{sid}/selfie",
        data={"selfie_image": data_uri(LIVE_JPG)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert selfie.status_code == 202 and "challenge" in selfie.json()
    after = verdict_counts(client, tenant.pk)
    outcomes = {outcome for outcome, count in after.items() if count > before.get(outcome, 0)}
    assert outcomes == {"unsure"}
    assert documented_values("facia_liveness_verdicts_total", "outcome") == {
        "live",
        "spoof",
        "refused",
        "unsure",
    }
    assert "challenge" in documented_values("facia_liveness_verdicts_total", "reason")
