"""docs/integrator/api.md lists the response headers the OpenAPI schema documents; they are
the headers of every response of the schema the service serves (Django's test client)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.conftest import REPO

PAGE = REPO / "docs" / "integrator" / "api.md"


def documented() -> set[str]:
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    span = text.split("and the response headers", 1)[1].split("`tests/liveness/", 1)[0]
    return set(re.findall(r"`([A-Z][\w-]*)`", span))


@pytest.mark.django_db
def test_api_md_lists_the_schemas_response_headers(client: Client) -> None:
    schema = client.get("/api/schema/?format=json").json()
    served = {
        header
        for operations in schema["paths"].values()
        for operation in operations.values()
        for response in operation.get("responses", {}).values()
        for header in response.get("headers", {})
    }
    assert len(served) >= 8
    assert documented() == served
