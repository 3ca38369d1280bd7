"""A body that cannot be one of our requests (far more keys and values than any has) is refused
before it is parsed, before the hash_id is looked at, in bounded memory: json.loads of these
bodies took +285 MB (1.3 million keys) and +175 MB (16 MB of ``[{},{},...]``)."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from liveness.jsonapi import MAX_JSON_ITEMS

MALFORMED = {"error": "Malformed JSON. Request body must be a JSON object."}
MB = 1024 * 1024


def many_keys(hash_id: str, count: int = 1_300_000) -> bytes:
    """The issue's 15.8 MB object: a valid hash_id first, then ``count`` junk keys."""
    head = json.dumps({"hash_id": hash_id, "selfie_image": "x"})[:-1].encode()
    return head + b"".join(b',"k%d":0' % i for i in range(count)) + b"}"


def empty_objects(size: int = 16 * MB - 1) -> bytes:
    return b"[" + b"{}," * ((size - 4) // 3) + b"{}]"


def posted_with_peak(client: Any, body: bytes) -> tuple[Any, int]:
    """The answer to ``body`` and the peak of memory allocated while answering it."""
    tracemalloc.start()
    try:
        response = client.post("/liveness", data=body, content_type="application/json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return response, peak


@pytest.mark.parametrize("shape", ["many-keys", "empty-objects"])
def test_a_body_of_millions_of_items_is_refused_in_bounded_memory(
    shape: str, tenant: tuple[Any, str], client: Any
) -> None:
    _, secret = tenant
    body = many_keys(secret) if shape == "many-keys" else empty_objects()
    assert len(body) > 15 * MB
    response, peak = posted_with_peak(client, body)
    assert response.status_code == 400
    assert response.json() == MALFORMED
    # The body's own copies (the test client's, request.body, its text) peak at 3-4 times its
    # size (48 and 59 MB here); parsing it peaked at 175-285 MB more.
    assert peak < 5 * len(body), f"peak {peak / MB:.0f} MB for a {len(body) / MB:.0f} MB body"


def body_of_items(hash_id: str, items: int) -> bytes:
    """An object of exactly ``items`` items: itself, hash_id and selfie_image (5), junk."""
    pairs = (items - 7) // 2
    junk: dict[str, object] = {f"k{i}": 0 for i in range(pairs)}
    junk["odd"] = [0] * (items - 7 - 2 * pairs)  # the key, the list and 0 or 1 zero
    body = json.dumps({"hash_id": hash_id, "selfie_image": "", **junk}).encode()
    assert items_in(json.loads(body)) == items
    return body


def items_in(value: object) -> int:
    """Keys and values, counted as liveness.jsonapi counts them (here by parsing)."""
    if isinstance(value, dict):
        return 1 + sum(1 + items_in(member) for member in value.values())
    if isinstance(value, list):
        return 1 + sum(items_in(member) for member in value)
    return 1


def test_the_item_limit_is_exact(tenant: tuple[Any, str], post_liveness: Any) -> None:
    _, secret = tenant
    at_limit = post_liveness(body_of_items(secret, MAX_JSON_ITEMS))
    assert at_limit.status_code == 400  # parsed and authenticated: the image is missing
    assert at_limit.json() == {"error": "Selfie_image is required and must be a JPEG, JPG or PNG."}
    over = post_liveness(body_of_items(secret, MAX_JSON_ITEMS + 1))
    assert over.status_code == 400
    assert over.json() == MALFORMED


@pytest.mark.parametrize(
    "body",
    [
        # strings count once whatever they hold: brackets, escaped quotes, PHP's \/ escapes
        '{"hash_id": "nope", "selfie_image": "%s"}' % ("[{" * 5000),
        '{"hash_id": "nope", "selfie_image": "%s"}' % ('\\"{' * 5000),
        '{"hash_id": "nope", "selfie_image": "%s"}' % ("a\\/b" * 5000),
        '{"hash_id": "nope", "selfie_image": "x\\\\", "frames": ["a", "b", "c"]}',
    ],
)
def test_long_strings_are_one_item(db: None, post_liveness: Any, body: str) -> None:
    response = post_liveness(body)
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid credentials"}


def test_a_refused_body_counts_no_failed_authentication(
    db: None, post_liveness: Any, settings: Any
) -> None:
    settings.AUTH_FAILURE_LIMIT = 1
    body = body_of_items("nope", 4 * MAX_JSON_ITEMS)
    for _ in range(3):  # never parsed: the hash_id was not tried
        assert post_liveness(body).json() == MALFORMED
    assert post_liveness({"hash_id": "nope"}).status_code == 401
