"""Calibrate a tenant on its own labelled captures (``manage.py calibrate`` and the admin's zip
upload): score them with the tenant's profile and crop policy, fit ml.calibration, store it.

Images are read as bytes and never written anywhere; no quota is used.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from django.db import transaction

from accounts.models import Calibration, Tenant
from ml import calibration
from ml.engine import LivenessEngine
from ml.errors import ImageError

LABELS = ("live", "spoof")
SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # inflated, per image (a zip bomb stops here)
MAX_TOTAL_BYTES = 512 * 1024 * 1024  # inflated, in all


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


def zip_images(
    data: bytes | io.BufferedIOBase,
    max_images: int = 5000,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Iterator[tuple[str, bytes]]:
    """(label, bytes) of every image under ``live/`` or ``spoof/`` (at any depth below a
    single top folder), read in memory."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except zipfile.BadZipFile as exc:
        raise CalibrationError("The upload is not a zip file.") from exc
    count = total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = PurePosixPath(info.filename).parts
            label = next((p for p in parts[:-1] if p in LABELS), None)
            if label is None or PurePosixPath(info.filename).suffix.lower() not in SUFFIXES:
                continue
            count += 1
            if count > max_images:
                raise CalibrationError(f"More than {max_images} images in the zip.")
            with archive.open(info) as member:  # never trust the declared size: read bounded
                content = member.read(max_image_bytes + 1)
            total += len(content)
            if len(content) > max_image_bytes or total > max_total_bytes:
                raise CalibrationError(
                    f"{info.filename} makes the zip too large once inflated (at most "
                    f"{max_image_bytes} bytes per image, {max_total_bytes} in all)."
                )
            yield label, content


def score(engine: LivenessEngine, tenant: Tenant, images: Iterable[tuple[str, bytes]]) -> Scored:
    """The fused logit of each image the tenant's gates would judge."""
    scored = Scored()
    for label, data in images:
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
