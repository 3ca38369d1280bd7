"""The decoder accepts real PNG/JPEG in their variants and refuses everything else early."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from ml.decode import MAX_PIXELS, decode_image, probe
from ml.errors import ImageError

RNG = np.random.default_rng(3)
PHOTO = cv2.GaussianBlur(RNG.integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 0)


def encode(ext: str, image: np.ndarray = PHOTO, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    return data.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims width x height (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "variant",
    [
        encode(".jpg"),
        encode(".jpg", params=[cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        encode(".png"),
        encode(".png", cv2.cvtColor(PHOTO, cv2.COLOR_BGR2GRAY)),
        encode(".jpg", cv2.cvtColor(PHOTO, cv2.COLOR_BGR2GRAY)),
        encode(".png", cv2.cvtColor(PHOTO, cv2.COLOR_BGR2BGRA)),
        encode(".png", PHOTO.astype(np.uint16) * 257),
        encode(".jpg") + b"trailing bytes after EOI, as some phones write",
    ],
    ids=[
        "jpeg",
        "progressive-jpeg",
        "png",
        "grey-png",
        "grey-jpeg",
        "alpha-png",
        "16bit-png",
        "jpeg-with-trailer",
    ],
)
def test_accepted_variants_decode_to_bgr(variant: bytes) -> None:
    image = decode_image(variant)
    assert image.shape == (240, 320, 3)
    assert image.dtype == np.uint8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a PNG or JPEG"),
        (b"GIF89a" + b"\x00" * 64, "not a PNG or JPEG"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64, "not a PNG or JPEG"),
        (encode(".jpg")[: len(encode(".jpg")) // 2], "truncated JPEG"),
        (encode(".png")[: len(encode(".png")) // 2], "truncated PNG"),
        (encode(".jpg")[:20], "truncated JPEG|frame header"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "IHDR"),
        (png_declaring(60000, 60000), "over the"),
        (png_declaring(1, 1), "too small"),
    ],
    ids=[
        "empty",
        "gif",
        "webp",
        "truncated-jpeg",
        "truncated-png",
        "jpeg-header-only",
        "png-garbage",
        "bomb",
        "1x1",
    ],
)
def test_refused_before_decoding(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_bomb_limit_is_checked_from_the_header() -> None:
    kind, width, height = probe(png_declaring(6000, 4000))
    assert (kind, width * height) == ("png", 24_000_000) and width * height <= MAX_PIXELS


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = cv2.resize(PHOTO, (4000, 3000))
    image = decode_image(encode(".jpg", big), min_long_side=1024)
    assert image.shape == (1500, 2000, 3)
    assert decode_image(encode(".jpg", big)).shape == (375, 500, 3)  # default: 480
