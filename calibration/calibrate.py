"""Calibrate a tenant on its own labelled captures (``manage.py calibrate`` and the admin's zip
upload): score them with the tenant's profile and crop policy, fit ml.calibration, store it.

Images are read as bytes and never written anywhere; no quota is used.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings
from django.db import transaction

from accounts.models import Tenant
from calibration.models import Calibration
from ml import calibration
from ml.engine import LivenessEngine
from ml.errors import ImageError

LABELS = ("live", "spoof")
SUFFIXES = {".jpg", ".jpeg", ".png"}
# The largest image /liveness accepts: its 16 MB body holds at most 12 MB of base64'd bytes.
MAX_IMAGE_BYTES = settings.LIVENESS_MAX_BODY_BYTES * 3 // 4
MAX_TOTAL_BYTES = 512 * 1024 * 1024  # inflated, in all
# Entries of the zip (folders included): a calibration sample is tens to hundreds of captures
# (the dev set: 84); each image costs the task worker up to ~0.4 s to judge.
MAX_MEMBERS = 2_000
_MAX_ENTRY_BYTES = 46 + 2 * 512  # a central directory record, with a generous name and extra
_EOCD_SEARCH = 22 + 0xFFFF  # the end record and the longest zip comment


class CalibrationError(Exception):
    """Why a calibration cannot be fitted; the message is for the operator."""


@dataclass
class Scored:
    live: list[float] = field(default_factory=list)  # fused logits of the judged images
    spoof: list[float] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # gate code -> images

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


def folder_images(folder: Path) -> Iterator[tuple[str, bytes]]:
    for label in LABELS:
        for path in sorted((folder / label).iterdir()):
            if path.is_file() and path.suffix.lower() in SUFFIXES:
                yield label, path.read_bytes()


def _end_of_central_directory(data: bytes) -> tuple[int, int]:
    """(entries, bytes) of the zip's central directory, from its end record (zip64 too),
    read before ``zipfile`` parses any entry: it builds an object per entry, and 650,000
    empty entries took 9.6 s and +477 MB."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD_SEARCH))
    if end < 0 or end + 22 > len(data):
        raise CalibrationError("The upload is not a zip file.")
    entries, size = struct.unpack_from("<xxxxxxxxxxHI", data, end)
    locator = end - 20
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and data[locator : locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if data[offset : offset + 4] != b"PK\x06\x06" or offset + 56 > len(data):
            raise CalibrationError("The upload is not a zip file.")
        entries, size = struct.unpack_from("<QQ", data, offset + 32)
    return entries, size


@dataclass(frozen=True)
class Member:
    label: str
    info: zipfile.ZipInfo


def zip_members(
    data: bytes,
    max_members: int = MAX_MEMBERS,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[Member]:
    """The images under ``live/`` or ``spoof/`` (at any depth below a single top folder), from
    the central directory only (no member is read): refuses more entries than ``max_members``,
    and declared sizes over the per-image or total bounds, before any work on the members."""
    entries, size = _end_of_central_directory(data)
    if entries > max_members or size > max_members * _MAX_ENTRY_BYTES:
        raise CalibrationError(f"More than {max_members} files in the zip.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError) as exc:
        raise CalibrationError("The upload is not a zip file.") from exc
    with archive:
        infos = archive.infolist()
    if len(infos) > max_members:
        raise CalibrationError(f"More than {max_members} files in the zip.")
    members, total = [], 0
    for info in infos:
        name = PurePosixPath(info.filename)
        label = next((p for p in name.parts[:-1] if p in LABELS), None)
        if info.filename.endswith("/") or label is None or name.suffix.lower() not in SUFFIXES:
            continue
        total += info.file_size
        if info.file_size > max_image_bytes or total > max_total_bytes:
            raise CalibrationError(
                f"{info.filename} makes the zip too large once inflated (at most "
                f"{max_image_bytes} bytes per image, {max_total_bytes} in all)."
            )
        members.append(Member(label, info))
    return members


def zip_images(
    data: bytes,
    max_members: int = MAX_MEMBERS,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Iterator[tuple[str, bytes]]:
    """(label, bytes) of every image of ``zip_members``, read in memory, one at a time; a member
    that does not inflate to its declared size and checksum is yielded empty (the decoder then
    refuses it)."""
    members = zip_members(data, max_members, max_image_bytes, max_total_bytes)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in members:
            try:
                # zipfile stops at the declared size: a lying header inflates no further.
                with archive.open(member.info) as stream:
                    content = stream.read(max_image_bytes + 1)
            except (
                zipfile.BadZipFile,
                NotImplementedError,
                RuntimeError,
                OSError,
                EOFError,
                ValueError,
                zlib.error,
            ):
                content = b""  # broken, encrypted or of an unknown compression
            yield member.label, content


def score(
    engine: LivenessEngine,
    tenant: Tenant,
    images: Iterable[tuple[str, bytes]],
    progress: Callable[[int], None] | None = None,
) -> Scored:
    """The fused logit of each image the tenant's gates would judge; ``progress`` is told how
    many images it has started, as it starts each."""
    scored = Scored()
    for done, (label, data) in enumerate(images, 1):
        if progress is not None:
            progress(done)
        try:
            found = engine.inspect(engine.decode(data), tenant.crop_policy)
        except ImageError:
            scored.refused["not_decoded"] = scored.refused.get("not_decoded", 0) + 1
            continue
        if found.failures:
            code = found.failures[0]
            scored.refused[code] = scored.refused.get(code, 0) + 1
            continue
        (scored.live if label == "live" else scored.spoof).append(found.logit(tenant.profile))
    return scored


def warnings_for(scored: Scored) -> list[str]:
    warn = calibration.WARN_PER_CLASS
    return [
        f"only {n} {name} images were judged (fewer than {warn}): the calibration stays "
        "close to the uncalibrated default and its figures are uncertain"
        for name, n in (("live", len(scored.live)), ("spoof", len(scored.spoof)))
        if n < warn
    ]


def fit_and_store(
    tenant: Tenant,
    scored: Scored,
    target_apcer: float | None,
    created_by: str,
    origin: str,
) -> tuple[Calibration, calibration.Fitted]:
    least = calibration.MIN_PER_CLASS
    if len(scored.live) < least or len(scored.spoof) < least:
        raise CalibrationError(
            f"Too few judged images to calibrate: {len(scored.live)} live and "
            f"{len(scored.spoof)} spoof (at least {least} of each are needed; "
            f"{scored.refused_total} refused by the gates)."
        )
    if target_apcer is not None and not 0.0 <= target_apcer <= 1.0:
        raise CalibrationError("The target APCER must be between 0 and 1.")
    active = tenant.active_calibration()
    fitted = calibration.calibrate(
        np.asarray(scored.live),
        np.asarray(scored.spoof),
        tenant.threshold,
        target_apcer,
        current=active or calibration.IDENTITY,
    )
    # what a revert goes back to: the threshold the tenant had while uncalibrated
    chain_id = (tenant.calibration or {}).get("id")
    chain = Calibration.objects.filter(pk=chain_id).first() if chain_id is not None else None
    uncalibrated_threshold = chain.previous_threshold if chain else tenant.threshold
    with transaction.atomic():
        stored = Calibration.objects.create(
            tenant=tenant,
            created_by=created_by[:150],
            origin=origin,
            profile=tenant.profile,
            params=fitted.platt.to_dict(),
            target_apcer=target_apcer,
            threshold=fitted.threshold,
            previous_threshold=uncalibrated_threshold,
            bona_fide=len(scored.live),
            attacks=len(scored.spoof),
            refused=scored.refused_total,
            figures={
                **fitted.figures(),
                "refused": scored.refused,
                # numbers only (no image, no file name): what the calibration page plots
                "scores": {
                    "live": [round(float(p), 6) for p in fitted.platt(np.asarray(scored.live))],
                    "spoof": [round(float(p), 6) for p in fitted.platt(np.asarray(scored.spoof))],
                },
            },
        )
        stored.activate()
    return stored, fitted
