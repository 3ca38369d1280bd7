"""The hostile-input corpus through the Django stack, with the real engine: each case gets
exactly the status and body in tests/corpus/expected.csv, and only successes use quota."""

from typing import Any

import pytest

from bench.corpus import CASES
from liveness.models import LivenessCheck
from tests.corpus import Expected, expected

TABLE = {row.case: row for row in expected()}

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_table_and_generators_agree() -> None:
    assert sorted(TABLE) == sorted(CASES)


def test_every_refusal_is_a_4xx() -> None:
    assert all(row.status in (201, 400, 401, 413, 422) for row in TABLE.values())


@pytest.mark.parametrize("name", list(TABLE))
def test_case(name: str, make_tenant: Any, client: Any) -> None:
    row: Expected = TABLE[name]
    tenant, secret = make_tenant(f"corpus-{name}")
    request = CASES[name](secret)
    response = client.post("/liveness", data=request.body, content_type=request.content_type)
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert row.matches(response.status_code, payload), (response.status_code, payload)
    tenant.refresh_from_db()
    assert tenant.requests_used == (1 if row.status == 201 else 0)
    assert LivenessCheck.objects.filter(tenant=tenant).count() == (row.status in (201, 422))
