"""Calibrate a tenant on its own labelled captures (``manage.py calibrate`` and the admin's zip
upload): score them with the tenant's profile and crop policy, fit ml.tenant_calibration (a
map per capture kind), and store it: active, or as a shadow candidate beside the active one.

Images are read as bytes and never written anywhere; no quota is used. Groups for the held-out
figures: a folder's manifest.csv (``subject``, else ``source`` or ``source_repo``), else a
subfolder under live/ or spoof/ (``live/<group>/x.jpg``), else none (each image alone).
"""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import Tenant
from calibration.models import Calibration, applied_maps, uncalibrated_threshold
from ml import labelled, profiles, tenant_calibration
from ml.engine import LivenessEngine
from ml.errors import ImageError
from ml.evaluate import MANIFEST_ENCODING, images_in, read_image
from ml.labelled import LayoutError
from ml.tenant_calibration import Rule, Sample

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


MAX_SHADOW_DAYS = 90
# A target APCER is a fraction of the attacks a threshold may accept. Above one half it accepts
# more than it refuses, which no operator means: "--target-apcer 1", meant as 1 %, set the
# threshold to 0.0000 (every selfie live). 0 accepts none of the sample: a threshold above its
# best attack, fitted to that one image.
MAX_TARGET_APCER = 0.5


def target_apcer_refused(target: float) -> str:
    """Why ``target`` (a fraction) is no target APCER, in words; "" when it is one."""
    if 0.0 < target <= MAX_TARGET_APCER:  # NaN fails it too
        return ""
    return (
        f"The target APCER must be above 0 and at most {MAX_TARGET_APCER:g}: a fraction of "
        "the attacks accepted (0.05 = 5 %)."
    )


Labelled = tuple[str, bytes, str]  # label, the image's bytes, its group ("" when unnamed)


@dataclass
class Scored:
    samples: list[Sample] = field(default_factory=list)  # fused logits of the judged images
    refused: dict[str, int] = field(default_factory=dict)  # gate code -> images
    group_kind: str = ""  # "subject", "source", "folder" or "" (ml.tenant_calibration)

    @property
    def live(self) -> int:
        return sum(s.live for s in self.samples)

    @property
    def spoof(self) -> int:
        return len(self.samples) - self.live

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def refused_said(self) -> str:
        """ "4 refused by the gates (not_decoded: 3, too_blurry: 1)", as the admin's page says
        it: the total alone left an operator to guess which of the files were not images."""
        codes = refusal_codes(self.refused)
        return f"{self.refused_total} refused by the gates" + (f" ({codes})" if codes else "")


def refusal_codes(refused: Mapping[str, int]) -> str:
    """ "not_decoded: 3, too_blurry: 1": the gates' refusals by code (the commands' and the
    admin's page)."""
    return ", ".join(f"{code}: {n}" for code, n in sorted(refused.items()))


def manifest_groups(folder: Path) -> tuple[str, dict[str, str]]:
    """(kind, ``file`` -> group) from the folder's manifest.csv: the ``subject`` column, else
    ``source`` or ``source_repo``; ("", {}) without one."""
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return "", {}
    with manifest.open(newline="", encoding=MANIFEST_ENCODING) as handle:
        rows = list(csv.DictReader(handle))
    for kind, columns in (("subject", ("subject",)), ("source", ("source", "source_repo"))):
        column = next((c for c in columns if rows and c in rows[0]), None)
        if column:
            return kind, {row["file"]: row[column] for row in rows if row.get(column)}
    return "", {}


def group_kind_of(folder: Path) -> str:
    kind, _ = manifest_groups(folder)
    if kind:
        return kind
    return "folder" if any(placed.group for placed, _ in images_in(folder)) else ""


def folder_images(folder: Path) -> Iterator[Labelled]:
    """(label, bytes, group) of the images of live/ and spoof/ (ml.labelled's rule); a file
    unreadable or over MAX_IMAGE_BYTES is yielded empty (ml.evaluate.read_image)."""
    _, groups = manifest_groups(folder)
    for placed, path in labelled.folder_images(folder):
        data = read_image(path, MAX_IMAGE_BYTES)
        yield placed.label, data, groups.get(placed.name, placed.group)


def _end_of_central_directory(data: bytes) -> tuple[int, int]:
    """(entries, bytes) of the zip's central directory, from its end record (zip64 too),
    read before ``zipfile`` parses any entry: it builds an object per entry, and 650,000
    empty entries took 9.6 s and +477 MB."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD_SEARCH))
    if end < 0 or end + 22 > len(data):
        raise CalibrationError("The upload is not a zip file.")
    entries, size = struct.unpack_from("<xxxxxxxxxxHI", data, end)
    locator = end - 20  # negative when the end record starts in the first 20 bytes: none
    if (
        (entries == 0xFFFF or size == 0xFFFFFFFF)
        and locator >= 0
        and data[locator : locator + 4] == b"PK\x06\x07"
    ):
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if data[offset : offset + 4] != b"PK\x06\x06" or offset + 56 > len(data):
            raise CalibrationError("The upload is not a zip file.")
        entries, size = struct.unpack_from("<QQ", data, offset + 32)
    # The directory lies before its end record, 46 bytes or more an entry: a record that says
    # otherwise (65,535 entries in 0 bytes, 10 bytes into the file) describes no directory.
    if size > end or entries * 46 > size:
        raise CalibrationError("The upload is not a zip file.")
    return entries, size


def _apple_double(name: PurePosixPath) -> bool:
    """macOS's Finder zips "__MACOSX/captures/live/._x.jpg" beside each image: its metadata, no
    image, which would count as an image refused (not_decoded), one for each real one."""
    return name.parts[0] == "__MACOSX" or name.name.startswith("._")


@dataclass(frozen=True)
class Member:
    label: str
    info: zipfile.ZipInfo
    group: str = ""  # live/<group>/x.jpg


# The compression methods a member may use. zipfile stops inflating at the declared size only
# for these: it hands a bzip2 (12) or LZMA (14) member's whole compressed input to the
# decompressor and cuts the output afterwards, so 1.6 kB of bzip2 declared as 1,000 bytes
# inflated 2 GB of zeros (18.5 s, 4.2 GB of RSS in the task worker) before being cut.
READ_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

# General purpose flag bit 0 (APPNOTE 4.4.4): the member is encrypted. zipfile reads none without
# its password: a job of 84 encrypted images refused all 84 (not_decoded) after scoring.
_ENCRYPTED = 0x1


def zip_members(
    data: bytes,
    max_members: int = MAX_MEMBERS,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[Member]:
    """The images of ``live/`` and ``spoof/`` (at the zip's top or below a single top folder,
    ml.labelled's rule: one misplaced is refused, named), from the central directory only (no
    member is read): refuses more entries than ``max_members``, and declared sizes over the
    per-image or total bounds, before any work on the members."""
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
    # as the rule reads them: "live\\x.jpg" (PowerShell 5.1's Compress-Archive), "/live/x.jpg"
    named = [(labelled.zip_name(info.filename), info) for info in infos]
    named = [
        (name, info)
        for name, info in named
        if not name.endswith("/")
        and labelled.is_image(name)
        and not _apple_double(PurePosixPath(name))
    ]
    try:
        root = labelled.zip_root(name for name, _ in named)
        placed = [(labelled.zip_place(name, root), info) for name, info in named]
    except LayoutError as exc:
        raise CalibrationError(f"The zip's layout: {exc}") from exc
    members, total = [], 0
    for where, info in placed:
        if where is None:
            continue
        if info.flag_bits & _ENCRYPTED:
            raise CalibrationError("The zip's files are encrypted: upload it without a password.")
        if info.compress_type not in READ_METHODS:
            raise CalibrationError(
                f"{info.filename} is compressed with method {info.compress_type}: only stored or "
                "deflated members are read (what zip tools write by default)."
            )
        total += info.file_size
        if info.file_size > max_image_bytes or total > max_total_bytes:
            raise CalibrationError(
                f"{info.filename} makes the zip too large once inflated (at most "
                f"{max_image_bytes} bytes per image, {max_total_bytes} in all)."
            )
        members.append(Member(where.label, info, where.group))
    if not members:  # was queued as a job of 0 images, whose result asked for 1 more of each
        said = ""
        if cased := labelled.miscased(name for name, _ in named):
            said += f" Its {_listed(cased)} not read: the folder names must be lowercase."
        # c/x/live/a.jpg: two folders down, where the generic sentence alone left the operator
        # to guess what was wrong
        if deep := labelled.buried((name for name, _ in named), root):
            top = root or "captures/"
            said += (
                f" Its {_listed(deep)} too deep, so no image there is read: live/ and "
                f"spoof/ must be at the zip's top (live/a.jpg) or directly in its single top "
                f"folder ({top}live/a.jpg, {top}spoof/b.jpg)."
            )
        raise CalibrationError(
            f"The zip holds no image ({', '.join(sorted(labelled.SUFFIXES))}) in a folder named "
            "live or spoof (lowercase), at its top or below a single top folder." + said
        )
    return members


def _listed(folders: list[str]) -> str:
    """ "LIVE/, SPOOF/ are": the first three folders, and the verb that agrees with them."""
    shown = ", ".join(folders[:3]) + (" ..." if len(folders) > 3 else "")
    return f"{shown} {'is' if len(folders) == 1 else 'are'}"


def zip_images(
    data: bytes,
    max_members: int = MAX_MEMBERS,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Iterator[Labelled]:
    """(label, bytes, group) of every image of ``zip_members``, read in memory, one at a time; a
    member that does not inflate to its declared size and checksum is yielded empty (the
    decoder then refuses it)."""
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
            yield member.label, content, member.group


def zip_group_kind(data: bytes) -> str:
    """ "folder" when the zip's images sit in folders below live/ or spoof/, else ""."""
    return "folder" if any(m.group for m in zip_members(data)) else ""


def score(
    engine: LivenessEngine,
    tenant: Tenant,
    images: Iterable[Labelled],
    progress: Callable[[int], None] | None = None,
    group_kind: str = "",
) -> Scored:
    """The fused logit and capture kind of each image the tenant's gates would judge (only
    its profile's models run: ``engine`` need compile no other, liveness.runtime.load_engine);
    ``progress`` is told how many images it has started, as it starts each."""
    scored = Scored(group_kind=group_kind)
    for done, (label, data, group) in enumerate(images, 1):
        if progress is not None:
            progress(done)
        try:
            # as /liveness judges it (ml.engine.LivenessEngine.gated)
            frame = engine.decode_frame(data)
            found = engine.inspect(frame, tenant.crop_policy, [tenant.profile])
        except ImageError:
            scored.refused["not_decoded"] = scored.refused.get("not_decoded", 0) + 1
            continue
        if found.failures:
            code = found.failures[0]
            scored.refused[code] = scored.refused.get(code, 0) + 1
            continue
        z = found.logit(tenant.profile)
        scored.samples.append(Sample(z, label == "live", found.capture, group))
    if not any(s.group for s in scored.samples):
        scored.group_kind = ""
    return scored


@dataclass(frozen=True)
class Basis:
    """What a calibration is computed against: its tenant's settings as read when its scoring
    began. The profile and crop policy score the images; the active calibration's maps and the
    threshold are the fit's "before" (its figures "now", its sentences "x → y", the threshold a
    rule without a target keeps); the shadow candidate is the one a shadow upload replaces."""

    profile: str
    crop_policy: str
    threshold: float
    active: int | None
    shadow: int | None

    @classmethod
    def of(cls, tenant: Tenant) -> Basis:
        return cls(
            tenant.profile,
            tenant.crop_policy,
            tenant.threshold,
            (tenant.calibration or {}).get("id"),
            (tenant.shadow_calibration or {}).get("id"),
        )

    def changes(self, now: Basis, shadow: bool) -> list[str]:
        """What differs in ``now``, in words; the candidate counts only for a ``shadow`` one."""
        said = []
        if self.profile != now.profile:
            said.append(f"profile {self.profile} → {now.profile}")
        if self.crop_policy != now.crop_policy:
            said.append(f"crop policy {self.crop_policy} → {now.crop_policy}")
        if self.threshold != now.threshold:
            said.append(f"threshold {self.threshold:.4f} → {now.threshold:.4f}")
        if self.active != now.active:
            said.append(f"active calibration {_named(self.active)} → {_named(now.active)}")
        if shadow and self.shadow != now.shadow:
            said.append(f"shadow candidate {_named(self.shadow)} → {_named(now.shadow)}")
        return said


def _named(calibration: int | None) -> str:
    return "none" if calibration is None else f"#{calibration}"


def stale(tenant: Tenant, changes: list[str]) -> CalibrationError:
    return CalibrationError(
        f"Not applied: while this calibration ran, {tenant.name}'s settings changed "
        f"({'; '.join(changes)}). It was computed against the settings the tenant had when "
        "it began: what it says it changes would be false now, and what it sets would undo "
        "those changes. Nothing was stored; calibrate again to fit against the settings now."
    )


def not_applied_said(why: str) -> str:
    """``Tenant.not_applied``'s reason, with what to do (the admin's and the commands')."""
    return f"Not applied: {why}: calibrate again"


def unapplied_note(tenant: Tenant) -> str:
    """A line on the tenant's active calibration when it is not applied; "" otherwise."""
    why = tenant.not_applied(tenant.calibration)
    if not why:
        return ""
    named = _named((tenant.calibration or {}).get("id"))
    return f"calibration {named} of {tenant.name}: {not_applied_said(why)} (the shipped maps score)"


def fit(
    tenant: Tenant, scored: Scored, target_apcer: float | None, equal_error: bool = False
) -> tenant_calibration.Result:
    """The calibration of ``scored`` for ``tenant``, stored nowhere; CalibrationError with
    how many more images of which class and kind it needs."""
    problem = tenant_calibration.needs(scored.samples)
    if problem is not None:
        raise CalibrationError(
            f"{problem} Judged: {scored.live} live and {scored.spoof} spoof "
            f"({scored.refused_said()})."
        )
    if target_apcer is not None and (refused := target_apcer_refused(target_apcer)):
        raise CalibrationError(refused)
    active, current = applied_maps(tenant)
    return tenant_calibration.run(
        scored.samples,
        profiles.shipped_maps(tenant.profile),
        active,
        tenant.threshold,
        Rule(target_apcer, equal_error),
        scored.group_kind,
        current,
        profiles.fitting_sources(),
    )


def store(
    tenant: Tenant,
    basis: Basis,
    scored: Scored,
    result: tenant_calibration.Result,
    created_by: str,
    origin: str,
    shadow_days: int | None,
    record: Callable[[str], None],
) -> Calibration:
    """Store the calibration and make it active; or, with ``shadow_days``, set it as the
    tenant's shadow candidate for that many days (the active one keeps answering). Refused
    (CalibrationError, nothing stored) when the tenant, read under its lock, no longer has the
    settings ``basis`` says it was computed against: an operator's threshold, or a calibration
    switched while an upload job ran, would be silently put back, and the job's history entry
    would say "threshold 0.5000 → 0.5000" of a tenant then at 0.7000.

    ``record`` writes the history entry (``accounts.audit``) of what it did, in the same
    transaction: stored first and recorded after it, a process killed in between left the
    calibration active with no entry, and the tenant's page asked for a re-upload of a
    calibration it was applying. Now both are kept or neither is."""
    if shadow_days is not None and not 1 <= shadow_days <= MAX_SHADOW_DAYS:
        raise CalibrationError(f"The shadow period must be 1 to {MAX_SHADOW_DAYS} days.")
    figures = result.figures()
    figures["refused"] = scored.refused
    if result.held_out is not None:  # numbers only (no image, no file name): the page's plots
        figures["scores"] = result.held_out.scores
    profile = tenant.profile  # the one it was scored with
    with transaction.atomic():
        tenant.lock()  # a job's tenant was read when it began; an operator may have switched
        changes = basis.changes(Basis.of(tenant), shadow_days is not None)
        if changes:
            raise stale(tenant, changes)
        stored = Calibration.objects.create(
            tenant=tenant,
            created_by=created_by[:150],
            origin=origin,
            profile=profile,
            fingerprint=profiles.fingerprint(profile),
            params=result.params(),
            target_apcer=result.rule.target_apcer,
            threshold=result.threshold,
            # what a revert goes back to (a shadow candidate's is set again when promoted)
            previous_threshold=uncalibrated_threshold(tenant),
            bona_fide=scored.live,
            attacks=scored.spoof,
            refused=scored.refused_total,
            figures=figures,
        )
        if shadow_days is None:
            stored.activate()
            # basis.threshold: the one it replaced (found unchanged under the lock)
            record(audit.calibrated(stored, basis.threshold, stored.threshold))
        else:
            stored.shadow(timezone.now(), timezone.now() + timedelta(days=shadow_days))
            # basis.shadow: the candidate it set aside (found unchanged under the lock)
            record(audit.shadowed(stored, shadow_days, basis.shadow, basis.active))
    return stored
