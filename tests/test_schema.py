"""OpenAPI schema and docs pages, served without internet access."""

import re
from typing import Any

CDN = re.compile(r"https?://(?!127\.0\.0\.1|localhost)[^\s\"']+\.(js|css)")


def test_schema_documents_the_contract(db: None, client: Any) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/liveness"]["post"]
    assert set(operation["responses"]) >= {"201", "400", "401", "405", "413", "422", "429"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/LivenessRequest")


def test_docs_pages_load_assets_locally(db: None, client: Any) -> None:
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url).content.decode()
        assert not CDN.search(page), url
        for asset in re.findall(r"(/static/[^\"']+\.(?:js|css))", page):
            assert client.get(asset).status_code == 200, asset
