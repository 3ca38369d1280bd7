"""The decoder accepts real PNG/JPEG in their variants and refuses everything else early."""

from __future__ import annotations

import io
import os
import struct
import threading
import zlib
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from bench.corpus import png_compressed_text, png_with_stream, zlib_stream
from ml.decode import (
    MAX_JPEG_SCANS,
    MAX_PIXELS,
    MAX_PNG_METADATA_BYTES,
    MAX_PNG_PIXELS,
    Frame,
    Limits,
    _decode_flag,
    _jpeg_segments,
    _png_raw_size,
    decode_frame,
    decode_image,
    probe,
)
from ml.errors import ImageError, PixelsOverLimit
from tests.ml.conftest import DEV_DATA

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
        encode(".jpg") + b"\xff\xda a motion photo's video after EOI, scan marker and all",
        encode(".jpg", params=[cv2.IMWRITE_JPEG_RST_INTERVAL, 4]),
        encode(".jpg", params=[cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[:-2]
        + b"\xff\xfe\x00\x04hi\xff\xd9",
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
        "jpeg-with-scan-marker-after-eoi",
        "jpeg-with-restart-markers",
        "progressive-jpeg-comment-after-last-scan",
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
    kind, width, height = probe(png_declaring(4000, 4000))
    assert (kind, width * height) == ("png", 16_000_000) and width * height <= MAX_PNG_PIXELS
    with pytest.raises(ImageError, match="over the"):
        probe(png_declaring(4097, 4096))


def test_a_callers_pixel_bound_is_told_apart_from_a_bomb() -> None:
    """Under MAX_PIXELS a caller's own bound refuses a valid file (PixelsOverLimit, which the
    edge names); over it the header is a bomb, whatever the caller's bound."""
    limits = Limits(max_pixels=4096 * 3072)
    with pytest.raises(PixelsOverLimit) as refused:
        probe(png_declaring(4608, 3456), limits)
    assert (refused.value.width, refused.value.height, refused.value.limit) == (
        4608,
        3456,
        4096 * 3072,
    )
    with pytest.raises(ImageError) as bomb:
        probe(png_declaring(MAX_PIXELS // 1000 + 1, 1000), limits)
    assert not isinstance(bomb.value, PixelsOverLimit)
    with pytest.raises(ImageError) as over_any_camera:  # /liveness's own bound stays a bomb
        probe(png_declaring(8000, 5001))
    assert not isinstance(over_any_camera.value, PixelsOverLimit)


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = cv2.resize(PHOTO, (4000, 3000))
    image = decode_image(encode(".jpg", big), min_long_side=1024)
    assert image.shape == (1500, 2000, 3)
    assert decode_image(encode(".jpg", big)).shape == (375, 500, 3)  # default: 480


def with_empty_scans(data: bytes, count: int) -> bytes:
    sos = data.rfind(b"\xff\xda")
    header = data[sos : sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]]
    return data[:-2] + header * count + data[-2:]


def scans(data: bytes) -> int:
    return data.count(b"\xff\xda")  # no APPn segments in these files


def test_scan_limit_leaves_room_for_every_encoder() -> None:
    grey = cv2.cvtColor(PHOTO, cv2.COLOR_BGR2GRAY)
    cmyk = Image.fromarray(PHOTO).convert("CMYK")
    written = {
        "colour": encode(".jpg", params=[cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        "grey": encode(".jpg", grey, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        "cmyk": pil_bytes(cmyk, "JPEG", progressive=True),
    }
    assert {kind: scans(data) for kind, data in written.items()} == {
        "colour": 10,
        "grey": 6,
        "cmyk": 18,
    }
    assert max(map(scans, written.values())) * 3 < MAX_JPEG_SCANS


def test_jpeg_with_more_scans_than_the_limit_is_refused() -> None:
    progressive = encode(".jpg", params=[cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    at_limit = with_empty_scans(progressive, MAX_JPEG_SCANS - scans(progressive))
    assert decode_image(at_limit).shape == (240, 320, 3)
    with pytest.raises(ImageError, match="more than 64 scans"):
        decode_image(with_empty_scans(progressive, MAX_JPEG_SCANS + 1 - scans(progressive)))


def pil_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def idat_inflated(data: bytes) -> tuple[int, tuple[int, ...]]:
    """Length of the inflated IDAT stream, and IHDR's width, height, depth, colour, interlace."""
    pos, stream = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            stream += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return len(zlib.decompress(stream)), (width, height, depth, colour, interlace)


@pytest.mark.parametrize(
    "options",
    [{}, {"interlace": 1}, {"mode": "1"}, {"mode": "P"}, {"mode": "LA", "interlace": 1}],
    ids=["rgb", "interlaced", "1-bit", "palette", "grey-alpha-interlaced"],
)
def test_png_budget_is_exactly_what_the_pixels_inflate_to(options: dict[str, object]) -> None:
    image = Image.fromarray(cv2.resize(PHOTO, (317, 229)))  # odd sizes: partial Adam7 passes
    mode = options.pop("mode", None)
    data = pil_bytes(image.convert(str(mode)) if mode else image, "PNG", **options)
    inflated, header = idat_inflated(data)
    assert inflated == _png_raw_size(*header)
    decode_image(data)


def test_png_data_beyond_the_pixels_is_refused() -> None:
    rows = 64 * (1 + 64 * 3)
    exact = png_with_stream(64, 64, zlib_stream(b"", rows))
    assert decode_image(exact).shape == (64, 64, 3)
    with pytest.raises(ImageError, match="inflates beyond"):
        decode_image(png_with_stream(64, 64, zlib_stream(b"", rows + 1)))
    with pytest.raises(ImageError, match="more image data"):
        decode_image(png_with_stream(64, 64, zlib.compress(bytes(rows)) + bytes(rows * 2)))


def test_compressed_png_metadata_is_bounded() -> None:
    each = 1024 * 1024
    assert decode_image(png_compressed_text(MAX_PNG_METADATA_BYTES // each, each)).size
    with pytest.raises(ImageError, match="compressed metadata"):
        decode_image(png_compressed_text(MAX_PNG_METADATA_BYTES // each + 1, each))


@pytest.mark.parametrize(
    ("kind", "head"),
    [(b"iCCP", b"icc\x00\x00"), (b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00en\x00\x00")],
    ids=["iccp", "compressed-itxt"],
)
def test_every_compressed_chunk_counts_against_the_metadata_limit(kind: bytes, head: bytes) -> None:
    rows = zlib.compress(bytes(64 * (1 + 64 * 3)))
    chunk = png_chunk(kind, head + zlib_stream(b"", MAX_PNG_METADATA_BYTES + 1))
    with pytest.raises(ImageError, match="compressed metadata"):
        decode_image(png_with_stream(64, 64, rows, chunk))


def test_real_metadata_is_accepted() -> None:
    profile = bytes(range(256)) * 2048  # 512 KB, as large as a printer's ICC profile
    image = Image.fromarray(PHOTO)
    data = pil_bytes(image, "PNG", icc_profile=profile, pnginfo=_text_info())
    assert decode_image(data).shape == (240, 320, 3)


def _text_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>" * 10_000, zip=True)
    info.add_text("Software", "a camera app", zip=True)
    return info


def test_png_scanline_bytes_are_bounded() -> None:
    header = struct.pack(">IIBBBBB", 4096, 4096, 16, 6, 0, 0, 0)  # 16-bit RGBA: 134 MB
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_declaring(16, 16)[33:]
    with pytest.raises(ImageError, match="scanlines"):
        decode_image(data)


# --- JPEG entropy-coded data cut or damaged, the file still ending with EOI -------------------

DEV_JPEGS = sorted(str(path.relative_to(DEV_DATA)) for path in DEV_DATA.glob("*/*.jpg"))
PROGRESSIVE_JPG = "live/jomariya_1.jpg"  # progressive (10 scans)
BASELINE_JPG = "live/minivision_1.jpg"
EOI = b"\xff\xd9"


def dev_bytes(name: str) -> bytes:
    return (DEV_DATA / name).read_bytes()


def cut(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)] + EOI


def zeroed(data: bytes, count: int, byte: int = 0) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([byte]) * count + data[middle + count :]


DAMAGED: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "progressive-cut-third": (PROGRESSIVE_JPG, lambda d: cut(d, 1 / 3)),
    "progressive-cut-half": (PROGRESSIVE_JPG, lambda d: cut(d, 1 / 2)),
    "progressive-cut-nine-tenths": (PROGRESSIVE_JPG, lambda d: cut(d, 0.9)),
    "progressive-last-10-bytes-cut": (PROGRESSIVE_JPG, lambda d: d[:-12] + EOI),
    "baseline-cut-third": (BASELINE_JPG, lambda d: cut(d, 1 / 3)),
    "baseline-cut-half": (BASELINE_JPG, lambda d: cut(d, 1 / 2)),
    "baseline-last-100-bytes-cut": (BASELINE_JPG, lambda d: d[:-102] + EOI),
    "progressive-zeroed-middle": (PROGRESSIVE_JPG, lambda d: zeroed(d, 2000)),
    "progressive-bad-huffman-code": (PROGRESSIVE_JPG, lambda d: zeroed(d, 64)),
    "baseline-zeroed-middle": ("live/jomariya_3.jpg", lambda d: zeroed(d, 2000)),
    "baseline-overwritten-middle": (BASELINE_JPG, lambda d: zeroed(d, 500, 0x55)),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_jpeg_ending_with_eoi_is_refused(
    case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """libjpeg fills what is missing with grey and only warns (cv2.imdecode returns an image):
    the warning refuses the file, and never reaches stderr. A progressive file cut before its
    last scan is refused from its scan headers, before libjpeg reads it."""
    name, damage = DAMAGED[case]
    data = damage(dev_bytes(name))
    assert data.endswith(EOI)
    with pytest.raises(ImageError, match="corrupt JPEG data|truncated progressive JPEG"):
        decode_image(data)
    assert capfd.readouterr().err == ""


def without_jfif(data: bytes) -> bytes:
    if data[6:11] != b"JFIF\x00":
        return data
    return data[:2] + data[4 + struct.unpack(">H", data[4:6])[0] :]


def jfif_revision(data: bytes, major: int) -> bytes:
    """A JFIF APP0 of revision ``major``.01 (libjpeg warns on any but 1)."""
    app0 = (
        b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes([major, 1, 0, 0, 1, 0, 1, 0, 0])
    )
    return data[:2] + app0 + without_jfif(data)[2:]


def adobe_transform(data: bytes, transform: int) -> bytes:
    """An Adobe APP14 with ``transform`` and no JFIF APP0: libjpeg warns on any code but 0, 1,
    2 and decodes as YCbCr, as it does without the marker."""
    fields = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, transform)
    app14 = b"\xff\xee" + struct.pack(">H", 2 + len(fields)) + fields
    return data[:2] + app14 + without_jfif(data)[2:]


BENIGN: dict[str, Callable[[bytes], bytes]] = {
    "padding-before-eoi": lambda d: d[:-2] + bytes(100) + EOI,
    "bytes-after-eoi": lambda d: d + bytes(4096),
    "unknown-jfif-revision": lambda d: jfif_revision(d, 2),
    "unknown-adobe-transform": lambda d: adobe_transform(d, 7),
}


@pytest.mark.parametrize("case", list(BENIGN))
@pytest.mark.parametrize("name", [PROGRESSIVE_JPG, BASELINE_JPG, "encoded"])
def test_benign_jpeg_warnings_decode_as_the_untouched_file(
    case: str, name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    data = encode(".jpg") if name == "encoded" else dev_bytes(name)
    variant = BENIGN[case](data)
    assert variant != data
    assert np.array_equal(decode_image(variant), decode_image(data))
    assert capfd.readouterr().err == ""


def exif_rotated(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    return pil_bytes(image, "JPEG", exif=exif.tobytes())


SYNTHETIC_JPEGS = {
    "progressive": encode(".jpg", params=[cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "grey": encode(".jpg", cv2.cvtColor(PHOTO, cv2.COLOR_BGR2GRAY)),
    "cmyk": pil_bytes(Image.fromarray(PHOTO).convert("CMYK"), "JPEG"),
    "cmyk-progressive": pil_bytes(Image.fromarray(PHOTO).convert("CMYK"), "JPEG", progressive=True),
    "exif-rotated": exif_rotated(Image.fromarray(PHOTO)),
    "restart-markers": encode(".jpg", params=[cv2.IMWRITE_JPEG_RST_INTERVAL, 4]),
}


def assert_decodes_as_cv2(data: bytes, min_long_side: int) -> int:
    """decode_image's pixels are cv2.imdecode's with the same flag, bit for bit; the flag."""
    kind, width, height = probe(data)
    flag = _decode_flag(kind, width, height, min_long_side)
    plain = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    assert plain is not None
    assert np.array_equal(decode_image(data, min_long_side), plain)
    return flag


@pytest.mark.parametrize("name", DEV_JPEGS)
def test_every_dev_jpeg_decodes_bit_identically(
    name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    data = dev_bytes(name)
    longest = max(probe(data)[1:])
    flags = {assert_decodes_as_cv2(data, longest // factor) for factor in (1, 2, 4, 8)}
    assert flags == {
        cv2.IMREAD_COLOR,
        cv2.IMREAD_REDUCED_COLOR_2,
        cv2.IMREAD_REDUCED_COLOR_4,
        cv2.IMREAD_REDUCED_COLOR_8,
    }
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("case", list(SYNTHETIC_JPEGS))
def test_jpeg_variants_decode_bit_identically(case: str, capfd: pytest.CaptureFixture[str]) -> None:
    for min_long_side in (480, 160, 80, 40):
        assert_decodes_as_cv2(SYNTHETIC_JPEGS[case], min_long_side)
    assert capfd.readouterr().err == ""


def test_exif_rotation_is_still_applied() -> None:
    assert decode_image(SYNTHETIC_JPEGS["exif-rotated"]).shape == (320, 240, 3)


def test_other_writers_to_stderr_are_not_lost(capfd: pytest.CaptureFixture[str]) -> None:
    """fd 2 is captured while a JPEG decodes: another thread's lines written meanwhile reach
    stderr all the same, and the decoder's own do not."""
    damaged = cut(dev_bytes(BASELINE_JPG), 1 / 2)
    lines = [f"another thread's record {i}\n".encode() for i in range(300)]
    stop = threading.Event()

    def write() -> None:
        for line in lines:
            os.write(2, line)
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    refused = 0
    while not stop.is_set() or refused < 20:
        with pytest.raises(ImageError, match="corrupt JPEG data"):
            decode_image(damaged)
        refused += 1
    writer.join()
    err = capfd.readouterr().err
    assert sorted(err.splitlines(keepends=True)) == sorted(line.decode() for line in lines)


def test_incomplete_png_is_refused_without_a_word_on_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """libpng's "Not enough image data" (its own bare line on stderr) and OpenCV's logger's
    "PNG input buffer is incomplete" warning: refused, and neither reaches stderr."""
    rows = zlib.compress(bytes(64 * (1 + 64 * 3)))
    with pytest.raises(ImageError):
        decode_image(png_with_stream(64, 64, rows[: len(rows) // 2]))
    assert cv2.imdecode(np.frombuffer(encode(".png")[:50], np.uint8), cv2.IMREAD_COLOR) is None
    assert capfd.readouterr().err == ""


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment after SOI whose only tag is its orientation."""
    ifd = b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01" + bytes([0, orientation, 0, 0])
    body = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08" + ifd + b"\x00\x00\x00\x00"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


@pytest.mark.parametrize(
    ("size", "ext", "orientation", "shown", "scale"),
    [
        ((320, 240), ".jpg", 1, (320, 240), 1),
        ((959, 700), ".jpg", 1, (959, 700), 1),  # under 960: decoded whole
        ((961, 1083), ".jpg", 1, (961, 1083), 2),  # odd sides: ceil(961 / 2) = 481 decoded
        ((1283, 963), ".jpg", 6, (963, 1283), 2),  # EXIF-rotated: as displayed
        ((1283, 963), ".jpg", 8, (963, 1283), 2),
        ((1283, 963), ".jpg", 3, (1283, 963), 2),  # upside down: not transposed
        ((4000, 3000), ".jpg", 1, (4000, 3000), 8),  # 500x375 decoded
        ((4000, 3000), ".png", 1, (4000, 3000), 1),  # PNG has no reduced decode
    ],
)
def test_a_frame_knows_its_own_size_and_scale(
    size: tuple[int, int], ext: str, orientation: int, shown: tuple[int, int], scale: int
) -> None:
    """decode_frame: decode_image's very pixels, with the frame's size as displayed and the
    scale from them to it (what a client's box is measured in)."""
    data = encode(ext, cv2.resize(PHOTO, size))
    if orientation != 1:
        data = with_orientation(data, orientation)
    frame = decode_frame(data)
    assert np.array_equal(frame.image, decode_image(data))
    assert ((frame.width, frame.height), frame.scale) == (shown, scale)
    height, width = frame.image.shape[:2]
    assert (-(-frame.width // scale), -(-frame.height // scale)) == (width, height)


@pytest.mark.parametrize(
    ("size", "orientation", "first", "finer"),
    [
        ((1920, 540), 1, 4, [2, 1]),
        ((4000, 3000), 1, 8, [4, 2, 1]),  # 12 MP: whole is within MAX_FINER_PIXELS
        ((1283, 963), 6, 2, [1]),  # EXIF-rotated: the finer decode is as displayed too
    ],
)
def test_a_reduced_frame_decodes_again_finer(
    size: tuple[int, int], orientation: int, first: int, finer: list[int]
) -> None:
    """Frame.finer: the same file at a finer DCT reduction, cv2's pixels at that flag, the
    frame's size and orientation kept; a PNG, or an image decoded elsewhere, has none."""
    data = encode(".jpg", cv2.resize(PHOTO, size))
    if orientation != 1:
        data = with_orientation(data, orientation)
    frame = decode_frame(data)
    assert (frame.scale, frame.finer_scales()) == (first, finer)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
    for scale in finer:
        again = frame.finer(scale)
        assert (again.width, again.height, again.scale) == (frame.width, frame.height, scale)
        plain = cv2.imdecode(np.frombuffer(data, np.uint8), flags[scale])
        assert plain is not None and np.array_equal(again.image, plain)
    with pytest.raises(ValueError):
        frame.finer(first)
    png = decode_frame(encode(".png", cv2.resize(PHOTO, size)))
    assert png.finer_scales() == [] == Frame.whole(frame.image).finer_scales()


def test_a_finer_decode_keeps_the_pixel_limits() -> None:
    """A JPEG's second decode never holds more than a PNG may (MAX_FINER_PIXELS: a 40 MP
    frame goes to 1/2, 10 MP, at the finest), and is probed again within the limits of the
    first (a capture session's 1 MP)."""
    declared = Frame(np.zeros((625, 1000, 3), np.uint8), 8000, 5000, 8, data=b"a JPEG")
    assert declared.finer_scales() == [4, 2]
    assert Frame(declared.image, 4096, 4096, 8, data=b"a JPEG").finer_scales() == [4, 2, 1]
    with pytest.raises(ValueError):
        declared.finer(1)
    data = encode(".jpg", cv2.resize(PHOTO, (1024, 1024)))
    frame = decode_frame(data, limits=Limits(max_pixels=1024 * 1024))
    assert frame.finer(1).scale == 1
    with pytest.raises(PixelsOverLimit):
        Frame(frame.image, frame.width, frame.height, 2, data, Limits(max_pixels=1000)).finer(1)


def test_out_of_file_descriptors_a_jpeg_decodes_as_before() -> None:
    """The capture needs two descriptors: a worker out of them (EMFILE) answered 500 instead of
    decoding uncaptured, as before the capture existed."""
    import resource

    jpeg = (DEV_DATA / "live" / "jomariya_1.jpg").read_bytes()
    expected = decode_image(jpeg)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        with pytest.raises(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        assert np.array_equal(decode_image(jpeg), expected)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- a PNG's end: IEND, and whatever follows it -----------------------------------------------

PNG = encode(".png")
IEND_AT = len(PNG) - 12  # cv2 writes IEND last, as every encoder does
LAST_IDAT_AT = PNG.rfind(b"IDAT") - 4

AFTER_IEND = {
    "newline": b"\n",
    "crlf": b"\r\n",
    "garbage": b"garbage after IEND",
    "zeros": bytes(100),
    "second-png": PNG,
    "iend-again": PNG[IEND_AT:],
    "jpeg": encode(".jpg"),
}


@pytest.mark.parametrize("trailer", list(AFTER_IEND))
def test_bytes_after_a_complete_png_are_not_its_own(
    trailer: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """libpng stops at IEND: a whole PNG followed by anything decodes as the PNG alone."""
    assert PNG.endswith(b"IEND\xaeB`\x82")
    assert np.array_equal(decode_image(PNG + AFTER_IEND[trailer]), decode_image(PNG))
    assert capfd.readouterr().err == ""


CUT_PNGS = {
    "cut-inside-first-idat": PNG[:100],
    "cut-inside-last-idat": PNG[: LAST_IDAT_AT + 20],
    "cut-inside-idat-then-newline": PNG[: len(PNG) // 2] + b"\n",
    "cut-inside-idat-then-iend": PNG[: len(PNG) // 2] + PNG[IEND_AT:],
    "cut-before-iend": PNG[:IEND_AT],
    "cut-before-iend-then-newline": PNG[:IEND_AT] + b"\n",
    "cut-before-iend-then-zeros": PNG[:IEND_AT] + bytes(120),
    "cut-inside-iend-header": PNG[: IEND_AT + 6],
    "iend-without-crc": PNG[:-4],
    "iend-with-half-its-crc": PNG[:-2],
    "iend-with-a-wrong-crc": PNG[:-4] + b"\x00\x00\x00\x00" + b"\n",
}


@pytest.mark.parametrize("case", list(CUT_PNGS))
def test_a_png_without_a_whole_iend_is_refused_as_truncated(
    case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ImageError, match="truncated PNG"):
        probe(CUT_PNGS[case])
    assert capfd.readouterr().err == ""


def _scan_starts(data: bytes) -> list[int]:
    return [pos for marker, pos in _jpeg_segments(data) if marker == 0xDA]


def _progressive_jpegs() -> dict[str, bytes]:
    """Progressive JPEGs as PIL and OpenCV write them (libjpeg's default progression script,
    colour and grey, 4:2:0 and 4:4:4, Huffman tables optimised or not)."""
    photo = cv2.resize(PHOTO, (640, 480))
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    written = {}
    for name, image, options in (
        ("pil", rgb, {}),
        ("pil grey", rgb[:, :, 0], {}),
        ("pil 4:4:4", rgb, {"subsampling": 0, "quality": 95}),
        ("pil optimised", rgb, {"optimize": True}),
    ):
        out = io.BytesIO()
        Image.fromarray(image).save(out, "JPEG", progressive=True, **options)
        written[name] = out.getvalue()
    written["opencv"] = encode(".jpg", photo, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    written["opencv optimised"] = encode(
        ".jpg", photo, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    )
    for path in sorted(DEV_DATA.glob("*/*.jp*g")):
        with Image.open(path) as opened:
            if opened.info.get("progressive"):
                written[path.name] = path.read_bytes()
    return written


def test_a_progressive_jpeg_cut_at_a_scan_boundary_is_refused_even_with_an_eoi() -> None:
    """libjpeg decodes whatever scans a progressive file holds: cut after 2 of 10 scans, EOI
    appended, it gave a blurred image that was judged (201) where the contract says 400."""
    written = _progressive_jpegs()
    assert sum(name.endswith((".jpg", ".jpeg")) for name in written) >= 5  # the dev ones
    for name, data in written.items():
        decode_image(data)  # whole: decoded
        scans = _scan_starts(data)
        assert len(scans) > 1, name
        for scan in scans[1:]:
            with pytest.raises(ImageError, match="truncated progressive JPEG"):
                decode_image(data[:scan] + b"\xff\xd9")
