"""A body's encodings (docs/integrator/api.md): a ``Content-Encoding`` other than identity is
refused with 415 on every JSON endpoint, before the body is read or anyone authenticated; the
JSON text itself is read in UTF-8, UTF-16 or UTF-32, as JSON's own detection finds it (Django's
test client, the real engine)."""

import gzip
import json
import uuid
from typing import Any

import pytest
from django.test import Client

from accounts.models import Tenant
from liveness.answers import CONTENT_CODED
from liveness.models import LivenessCheck
from tests.conftest import LIVE_JPG, data_uri

JSON = "application/json"
CODINGS = ["gzip", "br", "deflate", "GZIP", "identity, gzip", "gzip, identity", "x-unknown"]
REFUSED = {"error": CONTENT_CODED}


def assert_refused(answer: Any) -> None:
    assert answer.status_code == 415, answer.content
    assert answer.json() == REFUSED
    assert answer["Accept-Encoding"] == "identity"  # RFC 7694: the codings it takes


@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("coding", CODINGS)
def test_a_content_coded_liveness_body_is_refused_unjudged(
    tenant: tuple[Tenant, str], client: Client, coding: str
) -> None:
    """A gzip body labelled gzip got 400 "Malformed JSON" (its compressed bytes parsed as
    JSON); a plain body labelled gzip was judged, 201. Either is 415, nothing judged."""
    owner, secret = tenant
    body = json.dumps({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}).encode()
    for sent in (gzip.compress(body), body):  # compressed as labelled, or only labelled
        assert_refused(
            client.post("/liveness", sent, content_type=JSON, HTTP_CONTENT_ENCODING=coding)
        )
    owner.refresh_from_db()
    assert owner.requests_used == 0 and not LivenessCheck.objects.exists()


@pytest.mark.parametrize("action", ["", "/quality", "/challenge", "/selfie"])
def test_every_json_endpoint_refuses_a_content_coded_body(
    db: None, client: Client, action: str
) -> None:
    """One place in the edge (liveness.jsonapi.read_body): before the session's token."""
    path = f"/sessions/{uuid.uuid4()}{action}" if action else "/sessions"
    body = gzip.compress(b'{"hash_id": "x"}')
    assert_refused(client.post(path, body, content_type=JSON, HTTP_CONTENT_ENCODING="gzip"))


@pytest.mark.parametrize("coding", ["identity", "IDENTITY", " identity ", ""])
def test_identity_is_no_coding(db: None, post_liveness: Any, coding: str) -> None:
    """Read as any body: here as far as its unknown hash_id (401)."""
    assert post_liveness({"hash_id": "nope"}, HTTP_CONTENT_ENCODING=coding).status_code == 401


# What json.detect_encoding recognises: UTF-8 with or without its BOM, UTF-16 and UTF-32 with
# a BOM, or either byte order without one, from where the first character's zeros fall.
UNICODE = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]


@pytest.mark.parametrize("encoding", [*UNICODE, "utf-32-be"])
def test_json_text_is_read_in_each_unicode_encoding(
    db: None, post_liveness: Any, encoding: str
) -> None:
    body = json.dumps({"hash_id": "nope"}).encode(encoding)
    assert post_liveness(body).status_code == 401  # parsed: its hash_id refused


@pytest.mark.parametrize(
    "body",
    [b'{"hash_id": "caf\xe9"}', "{}".encode("utf-32-le")[:-1], b"\xff\xfe\x00\xd8"],
    ids=["latin-1", "utf-32 cut short", "lone surrogate bytes"],
)
def test_a_body_in_no_unicode_encoding_is_malformed(
    db: None, post_liveness: Any, body: bytes
) -> None:
    answer = post_liveness(body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "Malformed JSON. Request body must be a JSON object."}
