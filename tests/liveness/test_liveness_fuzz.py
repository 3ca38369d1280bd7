"""Property-based fuzzing (hypothesis) of the image decoder and of the /liveness body.

Properties: the decoder raises nothing but ImageError and returns 8-bit BGR; a declared pixel
count over MAX_PIXELS is refused before any pixel buffer is allocated; no body makes the
service answer 5xx or anything but JSON; repeating hostile inputs does not grow memory.
Deadlines are generous (they catch hangs, not slowness).
"""

import base64
import functools
import gc
import json
import logging
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.corpus import CASES, jpeg_declaring, png_chunk, png_declaring
from ml.decode import MAX_PIXELS, decode_image
from ml.errors import ImageError
from tests.conftest import LIVE_JPG

FUZZ = settings(
    # A guard against a hang (examples take 0-20 ms beside two busy loops), not a timing assertion:
    # Hypothesis fails a run whose example once passes it, and a loaded machine can stall one.
    deadline=timedelta(seconds=60),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: CI stays reproducible
)
STATUSES = {201, 400, 401, 413, 422, 429}


def encoded(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    return data.tobytes()


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Small real files to mutate: a face JPEG (baseline, progressive), PNGs (RGB, grey)."""
    photo = cv2.imread(str(LIVE_JPG))
    assert photo is not None
    face = cv2.resize(photo, (120, 160))
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    return (
        encoded(".jpg", face),
        encoded(".jpg", face, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        encoded(".png", face),
        encoded(".png", grey),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed file with bytes overwritten, inserted, deleted, and maybe cut short."""
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def assert_decodes_or_refuses(data: bytes) -> None:
    try:
        image = decode_image(data)
    except ImageError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


# --- decoder ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=4096))
def test_decoder_on_arbitrary_bytes(data: bytes) -> None:
    assert_decodes_or_refuses(data)


@FUZZ
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]), st.binary(max_size=2048))
def test_decoder_on_magic_then_anything(magic: bytes, rest: bytes) -> None:
    assert_decodes_or_refuses(magic + rest)


@settings(FUZZ, max_examples=300)
@given(mutated())
def test_decoder_on_mutated_real_files(data: bytes) -> None:
    assert_decodes_or_refuses(data)


@FUZZ
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1), st.sampled_from(["png", "jpeg"]))
def test_declared_size_over_the_limit_is_refused_unallocated(
    width: int, height: int, kind: str
) -> None:
    if kind == "jpeg":
        width, height = min(width, 65535), min(height, 65535)  # JPEG stores 16-bit sizes
    if width * height <= MAX_PIXELS:
        return
    data = png_declaring(width, height) if kind == "png" else jpeg_declaring(width, height)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError):
            decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # a 3-byte-per-pixel buffer would be > 120 MB


def test_bomb_peak_memory_stays_small() -> None:
    """60000 x 60000 RGB would be 10.8 GB: the header alone refuses it."""
    for bomb in (png_declaring(60000, 60000), jpeg_declaring(60000, 60000)):
        tracemalloc.start()
        with pytest.raises(ImageError):
            decode_image(bomb)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 1_000_000


def test_png_with_lying_compressed_size_is_refused() -> None:
    """An IDAT that inflates to far more than the declared frame is cut at the frame size."""
    bomb_idat = zlib.compress(b"\x00" * 50_000_000, 9)  # 50 MB of zeros in ~50 kB
    header = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", bomb_idat)
        + png_chunk(b"IEND", b"")
    )
    assert_decodes_or_refuses(data)


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if "VmRSS" in line)) / 1024


def test_decoder_memory_is_flat_over_many_hostile_inputs() -> None:
    rng = np.random.default_rng(5)

    def round_of_inputs() -> None:
        for seed in seeds():
            for _ in range(25):
                data = bytearray(seed)
                for at in rng.integers(0, len(data), 4):
                    data[at] = int(rng.integers(0, 256))
                assert_decodes_or_refuses(
                    bytes(data[: int(rng.integers(len(data) // 2, len(data)))])
                )
                assert_decodes_or_refuses(bytes(data))

    round_of_inputs()  # warm-up: allocator pools, codec tables
    before = rss_mb()
    for _ in range(4):
        round_of_inputs()
    assert rss_mb() - before < 40, f"RSS grew from {before:.0f} MB to {rss_mb():.0f} MB"


# --- the /liveness body ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
DATA_URI_PREFIXES = st.sampled_from(
    [
        "",
        "data:image/jpeg;base64,",
        "data:image/png;base64,",
        "data:image/gif;base64,",
        "data:;base64,",
        "DATA:IMAGE/JPEG;BASE64,",
        "data:image/jpeg,",
        "data:image/jpeg;base64",
        " data:image/jpeg;charset=utf-8;base64,",
    ]
)


@st.composite
def base64_text(draw: st.DrawFn) -> str:
    data = draw(st.one_of(st.binary(max_size=512), mutated()))
    text = base64.b64encode(data).decode()
    if draw(st.booleans()):
        text = text.replace("+", "-").replace("/", "_")
    if draw(st.booleans()):
        text = text.rstrip("=")
    if draw(st.booleans()) and text:
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at] + draw(st.sampled_from(["\n", "\r\n", " ", "\t", "=", "%", "é"])) + text[at:]
        )
    return draw(DATA_URI_PREFIXES) + text


def selfie_values() -> st.SearchStrategy[Any]:
    return st.one_of(json_values, st.text(), base64_text())


@st.composite
def bodies(draw: st.DrawFn, secret: str) -> bytes:
    shape = draw(st.sampled_from(["object", "value", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=512))
    if shape == "value":
        return json.dumps(draw(json_values)).encode()
    payload: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    hash_id = draw(
        st.one_of(st.just(secret), st.text(max_size=64), json_values, st.nothing()) | st.just(None)
    )
    if draw(st.booleans()):
        payload["hash_id"] = hash_id
    if draw(st.booleans()):
        payload["selfie_image"] = draw(selfie_values())
    return json.dumps(payload).encode()


def assert_well_formed(response: Any) -> None:
    assert response.status_code in STATUSES, response.status_code
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json(), dict)


@pytest.mark.slow  # 9 s at load 8
@pytest.mark.usefixtures("warm_engine")
@override_settings(AUTH_FAILURE_LIMIT=0)  # keep every example reaching the deeper checks
def test_liveness_body_fuzz(tenant: tuple[Any, str], client: Any) -> None:
    _, secret = tenant

    @settings(FUZZ, max_examples=250)
    @given(bodies(secret))
    def run(body: bytes) -> None:
        assert_well_formed(client.post("/liveness", data=body, content_type="application/json"))

    run()


@pytest.mark.usefixtures("warm_engine")
@override_settings(AUTH_FAILURE_LIMIT=0)
def test_liveness_image_field_fuzz(tenant: tuple[Any, str], client: Any) -> None:
    """A valid hash_id, so every example reaches the image decoder and often the engine."""
    _, secret = tenant

    @settings(FUZZ, max_examples=150)
    @given(selfie_values())
    def run(selfie: Any) -> None:
        body = json.dumps({"hash_id": secret, "selfie_image": selfie})
        assert_well_formed(client.post("/liveness", data=body, content_type="application/json"))

    run()


@pytest.mark.slow  # 18 s at load 8: the corpus, many rounds
@pytest.mark.usefixtures("warm_engine")
@override_settings(AUTH_FAILURE_LIMIT=0)
def test_service_memory_is_flat_over_the_corpus(tenant: tuple[Any, str], client: Any) -> None:
    _, secret = tenant
    requests = [CASES[name](secret) for name in CASES if name != "body-100mb"]

    def round_of_requests() -> None:
        for request in requests:
            response = client.post(
                "/liveness", data=request.body, content_type=request.content_type
            )
            assert response.status_code < 500

    # Leaks, not garbage: each request is a reference cycle (MessageMiddleware's storage and
    # the request point at each other), so its 16 MB body waits for a full collection; and
    # pytest would keep every "Bad Request" log record, request attached, until the test ends.
    with silenced("django.request"):
        round_of_requests()
        gc.collect()
        before = rss_mb()
        for _ in range(2):
            round_of_requests()
        gc.collect()
    assert rss_mb() - before < 60, f"RSS grew from {before:.0f} MB to {rss_mb():.0f} MB"


@contextmanager
def silenced(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _parsed(body: bytes) -> object:
    """What parse_object makes of ``body``: the object, or the rejection's code."""
    from liveness.answers import Rejected
    from liveness.jsonapi import parse_object

    try:
        return parse_object(body)
    except Rejected as exc:
        return exc.rejection.code


def _reference(body: bytes) -> object:
    """The same from json.loads on the bytes, as parse_object decoded them before its fast path
    (with its hooks: a repeated key, NaN or Infinity refused)."""
    from liveness import jsonapi

    try:
        payload = json.loads(body, **jsonapi.STRICT)
    except jsonapi.DuplicateKey:
        return "duplicate_key"
    except (ValueError, RecursionError):
        return "malformed_json"
    return payload if isinstance(payload, dict) else "not_an_object"


ENCODED = [
    b'{"hash_id": "abc", "selfie_image": "AAAA"}',
    '\ufeff{"hash_id": "é"}'.encode(),  # UTF-8 with a BOM
    '{"hash_id": "é"}'.encode("utf-16"),
    '{"hash_id": "é"}'.encode("utf-16-le"),
    '{"hash_id": "é"}'.encode("utf-32"),
    b'{"hash_id": "\xed\xa0\x80"}',  # a lone surrogate in UTF-8 (surrogatepass keeps it)
    b'{"hash_id": "\xff"}',  # not UTF-8 at all
    b'{"a": 1, "a": 2}',
    b'{"a": NaN}',
    b'{"a": 1e999999}',
    b"[1, 2]",
    b"",
]


@pytest.mark.parametrize("body", ENCODED)
def test_body_text_fast_path_parses_as_json_loads_on_bytes(body: bytes) -> None:
    assert _parsed(body) == _reference(body)


@given(st.binary(max_size=64) | st.text(max_size=64).map(lambda s: json.dumps({"k": s}).encode()))
@settings(max_examples=300, deadline=None)
def test_any_body_parses_as_json_loads_on_bytes(body: bytes) -> None:
    assert _parsed(body) == _reference(body)
