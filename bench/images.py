"""Benchmark inputs: the seed's kind of selfie (640x480 JPEG) and a large phone photo,
generated from a dev image at run time (never stored in the repo)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = Path(os.environ.get("FACIA_DEV_DATA", REPO.parent / "shared" / "data" / "dev"))
LIVE_JPG = DEV_DATA / "live" / "minivision_1.jpg"  # the tests' live selfie (480x640)
SOURCE = "live/minivision_5.jpg"  # a full camera frame, upright, 1617x2160


def selfie_jpeg(width: int, height: int, quality: int = 90) -> bytes:
    """A camera-like JPEG of ``width`` x ``height`` with a real face in it."""
    image = cv2.imread(str(DEV_DATA / SOURCE))
    assert image is not None, DEV_DATA / SOURCE
    image = cv2.resize(
        image,
        (width, height),
        interpolation=cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_CUBIC,
    )
    if width * height > 4_000_000:  # sensor noise, so the file has a phone photo's size
        noise = np.random.default_rng(0).normal(0, 6, image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def selfie_body(hash_id: str) -> bytes:
    """A /liveness body with LIVE_JPG as plain base64."""
    image = base64.b64encode(LIVE_JPG.read_bytes()).decode()
    return json.dumps({"hash_id": hash_id, "selfie_image": image}).encode()


def jpeg_uri(jpeg: bytes) -> str:
    """``jpeg`` as a data URI with its MIME type, as the seed's script and browsers send it."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def seed_body(jpeg: bytes, hash_id: str) -> bytes:
    """The JSON the seed's test script sends: a data URI with the MIME type."""
    return json.dumps({"hash_id": hash_id, "selfie_image": jpeg_uri(jpeg)}).encode()


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def no_face_jpeg(width: int, height: int, quality: int = 90) -> bytes:
    """A camera-like JPEG with no face in it: smooth colour blobs plus sensor noise."""
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 256, (max(2, height // 200), max(2, width // 200), 3), np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 8, image.shape)  # 4000x3000: a 3 MB file, as a phone's
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def no_face_png(width: int, height: int) -> bytes:
    """A grey gradient PNG: tiny as a file, ``width * height * 3`` bytes once decoded."""
    row = np.linspace(60, 200, width).astype(np.uint8)
    image = np.repeat(np.broadcast_to(row, (height, width))[..., None], 3, axis=2)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def corrupt_jpeg(jpeg: bytes) -> bytes:
    """The first half of a JPEG: a valid header, no end of image (answered 400)."""
    return jpeg[: len(jpeg) // 2]
