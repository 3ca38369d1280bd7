"""Hostile-input corpus for POST /liveness: every case is generated, none is a real file.

Images with a face are derived at run time from a dev image read in place (never stored);
every other image is synthesised. ``tests/corpus/expected.csv`` holds each case's expected
status and response body; ``tests/liveness/test_corpus.py`` runs them all; ``bench.bombs`` times the
bombs against gunicorn.

    python -m bench.corpus OUT_DIR [--hash-id H]   # write each body to a file
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bench.images import LIVE_JPG

HUNDRED_MB = 100 * 1024 * 1024
DEEP = 100_000  # nesting levels: far past Python's recursion limit


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str = "application/json"


Builder = Callable[[str], Request]
CASES: dict[str, Builder] = {}


def case(name: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        CASES[name] = builder
        return builder

    return register


# --- image material ----------------------------------------------------------------------------


def encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    return data.tobytes()


@functools.cache
def face() -> np.ndarray:
    """The live dev selfie, upright (EXIF applied), as BGR pixels."""
    image = cv2.imread(str(LIVE_JPG))
    assert image is not None, f"dev image missing: {LIVE_JPG}"
    return image


@functools.cache
def face_jpeg() -> bytes:
    return encode(".jpg", face(), [cv2.IMWRITE_JPEG_QUALITY, 90])


def pil_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def face_pil() -> Image.Image:
    return Image.fromarray(cv2.cvtColor(face(), cv2.COLOR_BGR2RGB))


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def scenery() -> np.ndarray:
    """A face-free 'photo': sky, ground, a house, a sun, sensor noise."""
    height, width = 480, 640
    sky = np.linspace(255, 150, height // 2, dtype=np.float32)[:, None, None] * [1.0, 0.8, 0.5]
    ground = np.full((height - height // 2, 1, 3), (40, 120, 60), np.float32)
    image = np.concatenate([np.broadcast_to(sky, (height // 2, 1, 3)), ground], 0)
    image = np.ascontiguousarray(np.broadcast_to(image, (height, width, 3))).astype(np.uint8)
    cv2.rectangle(image, (380, 180), (560, 330), (60, 60, 160), -1)
    cv2.fillPoly(image, [np.array([(370, 180), (470, 100), (570, 180)])], (30, 30, 90))
    cv2.circle(image, (110, 80), 40, (80, 220, 255), -1)
    jitter = np.random.default_rng(7).normal(0, 5, image.shape)
    return np.clip(image + jitter, 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A small, well-formed PNG whose IHDR claims ``width`` x ``height`` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 4096) if idat is None else idat
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG with its frame header rewritten to claim ``width`` x ``height``."""
    data = bytearray(encode(".jpg", noise(16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def zlib_stream(head: bytes, zeros: int) -> bytes:
    """A valid zlib stream of ``head`` then ``zeros`` zero bytes, built without ever holding
    the zeros: one self-contained 1 MiB deflate block repeated, the Adler-32 computed."""
    step = 1 << 20
    packer = zlib.compressobj(9)
    start = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(bytes(step)) + packer.flush(zlib.Z_FULL_FLUSH)
    rest = packer.compress(bytes(zeros % step)) + packer.flush(zlib.Z_FULL_FLUSH)
    low, high = zlib.adler32(head) & 0xFFFF, zlib.adler32(head) >> 16
    high = (high + zeros % 65521 * low) % 65521  # zeros leave the byte sum, low, unchanged
    final = b"\x03\x00"  # an empty final block with fixed codes
    return start + block * (zeros // step) + rest + final + struct.pack(">I", high << 16 | low)


def png_with_stream(width: int, height: int, stream: bytes, extra: bytes = b"") -> bytes:
    """An RGB PNG with ``stream`` in 64 KB IDAT chunks and ``extra`` chunks before them."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"".join(png_chunk(b"IDAT", stream[i : i + 65536]) for i in range(0, len(stream), 65536))
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra + idat + png_chunk(b"IEND", b"")
    )


def png_extra_idat(extra_bytes: int) -> bytes:
    """1000x1000 black, its zlib stream going on with zeros: about 1,000x ``extra_bytes``
    inflated beyond what the pixels need (libpng inflates a stream to its end)."""
    rows = 1000 * (1 + 3000)
    zeros = extra_bytes * 1024  # deflate packs zeros about 1,030:1
    return png_with_stream(1000, 1000, zlib_stream(b"", rows + zeros))


def png_40mp() -> bytes:
    """8000x5000 black, complete and valid: 120 MB of scanlines in 120 KB."""
    return png_with_stream(8000, 5000, zlib_stream(b"", 5000 * (1 + 8000 * 3)))


def png_compressed_text(count: int, size: int = 7_999_000) -> bytes:
    """A real small image behind ``count`` zTXt chunks of ``size`` bytes each (by default just
    under libpng's 8 MB limit, which it inflates in full)."""
    text = png_chunk(b"zTXt", b"k\x00\x00" + zlib_stream(b"", size))
    rows = (b"\x00" + bytes(64 * 3)) * 64
    return png_with_stream(64, 64, zlib.compress(rows), text * count)


@functools.cache
def progressive_scans() -> tuple[bytes, bytes, bytes]:
    """The face as a progressive JPEG split as (up to the last scan, an empty copy of a scan
    header, EOI)."""
    data = encode(".jpg", face(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    sos = data.rfind(b"\xff\xda")
    header = data[sos : sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]]
    return data[:-2], header, data[-2:]


def jpeg_with_empty_scans(count: int, size: tuple[int, int] | None = None) -> bytes:
    """The progressive face with ``count`` empty scans more; with ``size``, its frame header
    claims that size (each scan is then a pass over that many blocks, decoded as zeros)."""
    body, header, end = progressive_scans()
    data = bytearray(body + header * count + end)
    if size is not None:
        sof = data.find(b"\xff\xc2")
        data[sof + 5 : sof + 9] = struct.pack(">HH", size[1], size[0])
    return bytes(data)


# --- request bodies ------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def body(hash_id: object, selfie: object) -> Request:
    return Request(json.dumps({"hash_id": hash_id, "selfie_image": selfie}).encode())


def image_case(name: str, make: Callable[[], bytes], prefix: str = "") -> None:
    CASES[name] = lambda hash_id: body(hash_id, prefix + b64(make()))


# Images that really are PNG/JPEG: decoded whatever their colour model or bit depth; the
# greyscale ones are then refused by the quality gates (no_colour: the models judge colour).
image_case("jpeg-baseline", face_jpeg)
image_case("jpeg-progressive", lambda: encode(".jpg", face(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]))
image_case("jpeg-grayscale", lambda: encode(".jpg", cv2.cvtColor(face(), cv2.COLOR_BGR2GRAY)))
image_case("jpeg-cmyk", lambda: pil_bytes(face_pil().convert("CMYK"), "JPEG", quality=90))
image_case("jpeg-trailing-bytes", lambda: face_jpeg() + b"phone maker notes after EOI")
image_case("png-rgb", lambda: encode(".png", face()))
image_case("png-grayscale", lambda: encode(".png", cv2.cvtColor(face(), cv2.COLOR_BGR2GRAY)))
image_case("png-16bit", lambda: encode(".png", face().astype(np.uint16) * 257))
image_case("png-palette", lambda: pil_bytes(face_pil().quantize(256), "PNG"))
image_case("png-alpha", lambda: encode(".png", cv2.cvtColor(face(), cv2.COLOR_BGR2BGRA)))
image_case("png-interlaced", lambda: pil_bytes(face_pil(), "PNG", interlace=1))
# Not PNG/JPEG, or broken: refused with the contract's "corrupt" message.
image_case("jpeg-truncated", lambda: face_jpeg()[: len(face_jpeg()) // 2])
image_case("png-truncated", lambda: encode(".png", face())[:5000])
image_case("jpeg-header-then-garbage", lambda: face_jpeg()[:600] + noise(64, 64).tobytes())
image_case("png-header-then-garbage", lambda: png_declaring(640, 480)[:33] + noise(8, 8).tobytes())
image_case("png-garbage-idat", lambda: png_declaring(640, 480, idat=noise(8, 8).tobytes()))
image_case("png-1x1", lambda: encode(".png", noise(1, 1)))
image_case("jpeg-1x1", lambda: encode(".jpg", noise(1, 1)))
image_case("png-15x15", lambda: encode(".png", noise(15, 15)))
image_case("gif-named-png", lambda: pil_bytes(face_pil(), "GIF"), "data:image/png;base64,")
image_case("webp-named-png", lambda: pil_bytes(face_pil(), "WEBP"), "data:image/png;base64,")
image_case("bmp", lambda: encode(".bmp", face()))
image_case("tiff", lambda: pil_bytes(face_pil(), "TIFF"))
image_case("bomb-png-60000x60000", lambda: png_declaring(60000, 60000))
image_case("bomb-jpeg-60000x60000", lambda: jpeg_declaring(60000, 60000))
image_case("bomb-png-just-over-40mp", lambda: png_declaring(8000, 5001))
image_case("random-bytes", lambda: np.random.default_rng(1).bytes(4096))
# Decode bombs within the body limit: refused from the structure, before the decoder runs.
image_case("bomb-jpeg-40mp-5000-scans", lambda: jpeg_with_empty_scans(5000, (8000, 5000)))
image_case("bomb-jpeg-65-scans", lambda: jpeg_with_empty_scans(55))
image_case("bomb-png-11mb-extra-idat", lambda: png_extra_idat(11_500_000))
image_case("bomb-png-3mb-extra-idat", lambda: png_extra_idat(3_000_000))
image_case("bomb-png-40mp", png_40mp)
image_case("bomb-png-4097x4096", lambda: png_declaring(4097, 4096))
image_case("bomb-png-200-ztxt", lambda: png_compressed_text(200))
# Decodable, but nothing to judge: 422, no quota used.
image_case("face-too-small-24x32", lambda: encode(".png", cv2.resize(face(), (24, 32))))
image_case("face-free-photo", lambda: encode(".jpg", scenery()))
image_case("noise-jpeg", lambda: encode(".jpg", noise(480, 640)))
# base64 spellings of a good JPEG, and data URI labels: the bytes decide, not the label.
image_case("data-uri-jpeg", face_jpeg, "data:image/jpeg;base64,")
image_case("data-uri-wrong-mime-gif", face_jpeg, "data:image/gif;base64,")
image_case("data-uri-wrong-mime-text", face_jpeg, "data:text/plain;base64,")
image_case("data-uri-octet-stream", face_jpeg, "data:application/octet-stream;base64,")
image_case("data-uri-uppercase", face_jpeg, "DATA:IMAGE/JPEG;BASE64,")
image_case("data-uri-with-params", face_jpeg, "data:image/jpeg;name=selfie.jpg;base64,")
image_case(
    "data-uri-gif-bytes-jpeg-label", lambda: pil_bytes(face_pil(), "GIF"), "data:image/jpeg;base64,"
)


@case("data-uri-16mb-semicolons")
def _(hash_id: str) -> Request:
    prefix = json.dumps({"hash_id": hash_id, "selfie_image": "data:"}).encode()[:-2]
    return Request(prefix + b";" * (16 * 1024 * 1024 - len(prefix) - 2) + b'"}')


@case("data-uri-not-base64")
def _(hash_id: str) -> Request:
    return body(hash_id, "data:image/jpeg," + b64(face_jpeg()))


@case("base64-mime-newlines")
def _(hash_id: str) -> Request:
    text = b64(face_jpeg())
    return body(hash_id, "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76)))


@case("base64-spaces-and-tabs")
def _(hash_id: str) -> Request:
    text = b64(face_jpeg())
    return body(hash_id, " \t".join(text[i : i + 50] for i in range(0, len(text), 50)) + "\n")


@case("base64-urlsafe")
def _(hash_id: str) -> Request:
    return body(hash_id, base64.urlsafe_b64encode(face_jpeg()).decode())


@case("base64-missing-padding")
def _(hash_id: str) -> Request:
    data = face_jpeg()
    data += b"\x00" * ((1 - len(data)) % 3)  # a length that needs padding
    return body(hash_id, b64(data).rstrip("="))


@case("base64-urlsafe-unpadded-data-uri")
def _(hash_id: str) -> Request:
    text = base64.urlsafe_b64encode(face_jpeg() + b"\x00").decode().rstrip("=")
    return body(hash_id, "data:image/jpeg;base64," + text)


@case("base64-invalid-characters")
def _(hash_id: str) -> Request:
    return body(hash_id, "this is *not* base64!")


# --- missing or empty image ------------------------------------------------------------------


@case("image-zero-bytes")
def _(hash_id: str) -> Request:
    return body(hash_id, b64(b""))


@case("image-empty-data-uri")
def _(hash_id: str) -> Request:
    return body(hash_id, "data:image/png;base64,")


@case("image-whitespace-only")
def _(hash_id: str) -> Request:
    return body(hash_id, " \n\t ")


@case("image-null")
def _(hash_id: str) -> Request:
    return body(hash_id, None)


@case("image-key-absent")
def _(hash_id: str) -> Request:
    return Request(json.dumps({"hash_id": hash_id}).encode())


# --- wrong types ------------------------------------------------------------------------------


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def _with_hash_id(value: object) -> Builder:
    return lambda _h: body(value, "x")


def _with_image(value: object) -> Builder:
    return lambda h: body(h, value)


def _raw(raw: bytes) -> Builder:
    return lambda _h: Request(raw)


for label, value in {
    "int": 12345,
    "float": 1.5,
    "bool": True,
    "list": ["abc"],
    "object": {"hash_id": "x"},
}.items():
    CASES[f"hash-id-{label}"] = _with_hash_id(value)
for label, value in {
    "int": 0,
    "bool-false": False,
    "list": ["/9j/4AAQ"],
    "object": {"data": "/9j/4AAQ"},
    "nested-500": _nested(500),
}.items():
    CASES[f"image-{label}"] = _with_image(value)


# --- credentials ----------------------------------------------------------------------------------


@case("hash-id-missing")
def _(hash_id: str) -> Request:
    return Request(json.dumps({"selfie_image": b64(face_jpeg())}).encode())


@case("hash-id-unknown")
def _(hash_id: str) -> Request:
    return body("A" * 43, b64(face_jpeg()))


@case("hash-id-emoji-and-rtl")
def _(hash_id: str) -> Request:
    return body("🙂 ünïcødé \u202e\u0000 ﷽", b64(face_jpeg()))


@case("hash-id-lone-surrogate")
def _(hash_id: str) -> Request:
    return Request(b'{"hash_id": "\\ud800abc", "selfie_image": "x"}')


@case("hash-id-1mb")
def _(hash_id: str) -> Request:
    return body("h" * 1_000_000, "x")


@case("hash-id-valid-with-whitespace")
def _(hash_id: str) -> Request:
    return body(f" {hash_id}\n", b64(face_jpeg()))


# --- unicode junk in the image ------------------------------------------------------------------


@case("image-unicode-junk")
def _(hash_id: str) -> Request:
    return body(hash_id, "🙂🙃 ünïcødé \u202e\u0000 ﷽ " * 10)


@case("image-lone-surrogate")
def _(hash_id: str) -> Request:
    return Request(json.dumps({"hash_id": hash_id}).encode()[:-1] + b', "selfie_image": "\\udfff"}')


@case("image-fullwidth-base64")
def _(hash_id: str) -> Request:
    # U+FF21.. look like base64 letters but are not ASCII.
    return body(hash_id, "".join(chr(0xFEE0 + ord(c)) for c in b64(face_jpeg())[:400]))


# --- body shape -------------------------------------------------------------------------------


@case("body-100mb")
def _(hash_id: str) -> Request:
    prefix = json.dumps({"hash_id": hash_id, "selfie_image": ""}).encode()[:-2]
    return Request(prefix + b"A" * HUNDRED_MB + b'"}')


@case("body-nested-100000-array")
def _(hash_id: str) -> Request:
    return Request(b"[" * DEEP + b"]" * DEEP)


@case("body-nested-100000-in-image")
def _(hash_id: str) -> Request:
    return Request(
        json.dumps({"hash_id": hash_id}).encode()[:-1]
        + b', "selfie_image": '
        + b'{"a":' * DEEP
        + b"1"
        + b"}" * DEEP
        + b"}"
    )


for label, raw in {
    "array": b"[1, 2]",
    "string": b'"hash_id"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
}.items():
    CASES[f"body-json-{label}"] = _raw(raw)


@case("body-empty")
def _(hash_id: str) -> Request:
    return Request(b"")


@case("body-broken-json")
def _(hash_id: str) -> Request:
    return Request(b'{"hash_id": "x", "selfie_image": ')


@case("body-not-utf8")
def _(hash_id: str) -> Request:
    return Request(b'{"hash_id": "\xff\xfe", "selfie_image": "x"}')


@case("body-utf8-bom")
def _(hash_id: str) -> Request:
    return Request(b"\xef\xbb\xbf" + body(hash_id, b64(face_jpeg())).body)


@case("body-utf16")
def _(hash_id: str) -> Request:
    return Request(
        json.dumps({"hash_id": hash_id, "selfie_image": b64(face_jpeg())}).encode("utf-16")
    )


@case("body-extra-keys")
def _(hash_id: str) -> Request:
    payload = {"hash_id": hash_id, "selfie_image": b64(face_jpeg()), "email": "x", "n": [1]}
    return Request(json.dumps(payload).encode())


@case("body-repeated-hash-id")
def _(hash_id: str) -> Request:
    return Request(f'{{"hash_id": "wrong", "hash_id": "{hash_id}", "selfie_image": "x"}}'.encode())


@case("body-repeated-image")
def _(hash_id: str) -> Request:
    good = b64(face_jpeg())
    raw = f'{{"hash_id": "{hash_id}", "selfie_image": "{good}", "selfie_image": "x"}}'
    return Request(raw.encode())


@case("body-repeated-nested-key")
def _(hash_id: str) -> Request:
    raw = f'{{"hash_id": "{hash_id}", "selfie_image": "x", "meta": {{"a": 1, "a": 2}}}}'
    return Request(raw.encode())


@case("body-nan-and-infinity")
def _(hash_id: str) -> Request:
    return Request(f'{{"hash_id": "{hash_id}", "selfie_image": NaN, "x": Infinity}}'.encode())


@case("body-text-plain-content-type")
def _(hash_id: str) -> Request:
    return Request(body(hash_id, b64(face_jpeg())).body, "text/plain")


@case("body-multipart-form")
def _(hash_id: str) -> Request:
    boundary = "XyZ"
    raw = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="hash_id"\r\n\r\n{hash_id}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="selfie_image"; '
            f'filename="s.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + face_jpeg()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Request(raw, f"multipart/form-data; boundary={boundary}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--hash-id", default="HASH_ID")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 100 MB body")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in CASES.items():
        if args.skip_large and name == "body-100mb":
            continue
        request = build(args.hash_id)
        (args.out / f"{name}.body").write_bytes(request.body)
    print(f"wrote {len(CASES)} request bodies to {args.out}")


if __name__ == "__main__":
    main()
