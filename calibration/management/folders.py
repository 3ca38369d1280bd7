"""What the engine commands (evaluate, calibrate, tenant_protocol) share: a labelled live/ +
spoof/ folder, the engine; each refusal a CommandError (a tenant by name:
``accounts.management.tenants``)."""

import csv
from collections.abc import Collection
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from guard.validators import no_control_characters
from liveness.runtime import load_engine
from ml.engine import LivenessEngine
from ml.errors import ModelInstallError
from ml.evaluate import (
    MANIFEST_ENCODING,
    SUFFIXES,
    amount,
    images_in,
    manifest_rows,
    sources_of,
)
from ml.labelled import LABELS, LayoutError
from ml.text import escape_controls


def labelled_folder(folder: Path) -> Path:
    """``folder`` when it holds live/ and spoof/, and a manifest.csv (optional) keyed by
    ``file``, the image's path in the folder (ml.evaluate.manifest_rows). Its path names the
    data set where it is stored and shown (an evaluation's folder): no control characters."""
    try:
        no_control_characters(str(folder))
    except ValidationError as exc:
        raise CommandError(f"{escape_controls(str(folder))}: {' '.join(exc.messages)}") from exc
    missing = [label for label in LABELS if not (folder / label).is_dir()]
    if missing:
        raise CommandError(layout_said(folder, missing))
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return folder
    header, rows = _read(manifest)
    if "file" not in header:
        raise CommandError(
            f"{manifest} has no file column (each image's path in the folder, e.g. live/a.jpg)."
        )
    _no_conflicting_rows(manifest, header.index("file"), rows)
    return folder


def layout_said(folder: Path, missing: list[str]) -> str:
    """Why ``folder`` is refused, lacking the ``missing`` label folders: one class alone is
    read from an empty folder of the other (so a misspelt ``spoofs/`` is not taken for "no
    attacks"), and the folders it holds instead are named."""
    others = sorted(p.name + "/" for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    said = f"{folder} must contain live/ and spoof/ folders"
    if len(missing) == 1:
        said += f" (no {missing[0]}/: for {LABELS[LABELS.index(missing[0]) - 1]} images alone, "
        said += f"create an empty {missing[0]}/)"
    if others:
        said += f"; it holds {', '.join(escape_controls(o) for o in others[:5])}"
    return said + "."


EVALUATE_COUNTS = "with no source, subject or PAI species"
# calibrate: ml.tenant_calibration.counted
CALIBRATE_COUNTS = "in the fit, but not in the figures (their source or subject is unknown)"


def images_without_rows(
    folder: Path, names: Collection[str], counts: str = EVALUATE_COUNTS
) -> str | None:
    """A warning when the folder's manifest.csv has no row for some of its images (``names``,
    as ``live/a.jpg``), or None: rows keyed "a.jpg" or "data/live/a.jpg" matched no image, and
    the report said the manifest named no sources without a word of why. ``counts``: how the
    command counts them."""
    files = {row["file"] for row in manifest_rows(folder)}
    missing = sum(name not in files for name in names)
    if not files or not missing:
        return None
    return (
        f"manifest.csv has no row for {missing} of the {amount(len(names), 'image')} (a row's "
        "file is the image's path in the folder, e.g. live/a.jpg): "
        f"{'it counts' if missing == 1 else 'they count'} {counts}"
    )


def _no_conflicting_rows(manifest: Path, column: int, rows: list[list[str]]) -> None:
    """Two rows of one image that differ (its source, species or subject) are refused: read
    as they come, the last row would win silently and the figures count it there; the same
    row twice is harmless."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        if len(row) <= column:
            continue
        name = row[column]
        if seen.setdefault(name, row) != row:
            raise CommandError(
                f"{manifest} has rows that differ for {escape_controls(name)}: keep one "
                "(the commands would take the last)."
            )


def has_images(folder: Path) -> None:
    """Refuse, before the models load, a folder with no image in live/ or spoof/, or with one
    where ml.labelled's rule puts none (named): an empty one ended evaluate and
    tenant_protocol with a traceback, one misplaced was skipped without a word."""
    try:
        images_in(folder)
    except LayoutError as exc:
        raise CommandError(f"{folder}: {escape_controls(str(exc))}") from exc
    except FileNotFoundError as exc:
        raise CommandError(
            f"{folder} has no image ({', '.join(sorted(SUFFIXES))}) in live/ or spoof/ (directly, "
            "or in one group folder: live/<group>/x.jpg)."
        ) from exc


SOURCE_NAMES = ("source", "source_repo")  # as ml.evaluate.sources_of reads them


def no_source_said(folder: Path) -> str:
    """Why the folder's manifest.csv names no image's source (ml.evaluate.sources_of), read
    before any image is scored; "" when it names one."""
    manifest = folder / "manifest.csv"
    header, _ = _read(manifest)
    columns = [name for name in SOURCE_NAMES if name in header]
    if not columns:
        return f"{manifest} has no source (or source_repo) column."
    if not any(sources_of(folder).values()):
        said = " and ".join(columns) + (" columns are" if len(columns) > 1 else " column is")
        return f"{manifest}: its {said} empty on every row, so no image has a source."
    return ""


def _read(manifest: Path) -> tuple[list[str], list[list[str]]]:
    """The manifest's header and rows, read whole as the commands read it: a byte that is not
    UTF-8 or a malformed row further down is a CommandError naming the file when the
    folder is checked, before any image is judged."""
    try:
        with manifest.open(newline="", encoding=MANIFEST_ENCODING) as handle:
            rows = csv.reader(handle)
            header = next(rows, [])
            return header, list(rows)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"cannot read {manifest}: {escape_controls(str(exc))}") from exc


def command_engine(profiles: Collection[str]) -> LivenessEngine:
    """A new engine (liveness.runtime.load_engine) that compiles the models of ``profiles``
    only, those the command scores; a missing or bad model a CommandError."""
    try:
        return load_engine(profiles)
    except ModelInstallError as exc:
        raise CommandError(str(exc)) from exc
