"""Where a labelled data set's images sit: one rule for a folder (``manage.py evaluate``,
``calibrate``, ``tenant_protocol``) and for the admin's calibration zip.

``live/`` (bona fide presentations) and ``spoof/`` (attack presentations) at the top (in a zip,
at its top or below a single top folder); each image directly in them (``live/x.jpg``) or in one
group folder (``live/<group>/x.jpg``: the group of the held-out figures, the source when a
manifest names none). An image anywhere else below them (deeper, or in a group folder named
live or spoof, whose label would be a guess) is refused, naming its path: it was read under the
outermost label by the zip and skipped without a word by the folder reader. Files that are no
image by their suffix are ignored, as is everything beside ``live/`` and ``spoof/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

LABELS = ("live", "spoof")
SUFFIXES = {".jpg", ".jpeg", ".png"}
RULE = (
    "images go directly in live/ and spoof/ or in one group folder below them (live/<group>/x.jpg)"
)


class LayoutError(ValueError):
    """An image where the rule puts none; the message, naming it, is for the operator."""


@dataclass(frozen=True)
class Placed:
    label: str  # "live" or "spoof"
    group: str  # "" directly in the label's folder
    name: str  # label/[group/]file: the image's path in the data set, as manifest.csv keys it


def is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in SUFFIXES


def place(parts: tuple[str, ...]) -> Placed:
    """The label and group of the image at ``parts`` (its path from the data set's top, the
    first part ``live`` or ``spoof``); LayoutError when the rule puts no image there."""
    shown = "/".join(parts)
    if len(parts) > 3:
        raise LayoutError(f"{shown}: too deep; {RULE}.")
    if len(parts) == 3 and parts[1] in LABELS:
        raise LayoutError(f"{shown}: a {parts[1]}/ folder inside {parts[0]}/; {RULE}.")
    return Placed(parts[0], parts[1] if len(parts) == 3 else "", shown)


def folder_images(folder: Path) -> list[tuple[Placed, Path]]:
    """Every image of ``folder``'s live/ and spoof/ (sorted by path), placed; LayoutError for
    the first one misplaced. An entry named as an image (a folder, a dangling link, a FIFO) is
    listed as one: the reader counts it as not decoded."""
    found = []
    for label in LABELS:
        top = folder / label
        if not top.is_dir():
            continue
        for path in _walk(top):
            found.append((place((label, *path.relative_to(top).parts)), path))
    return found


def _walk(top: Path) -> Iterator[Path]:
    """The entries below ``top`` named as images, sorted, through folders not so named."""
    for path in sorted(top.iterdir()):
        if is_image(path.name):
            yield path
        elif path.is_dir():
            yield from _walk(path)


def zip_name(name: str) -> str:
    """A zip entry's path as the rule reads it: ``\\`` as ``/`` (Windows PowerShell 5.1's
    Compress-Archive writes ``live\\x.jpg``) and no leading ``/`` (the zip format forbids one,
    but tools write it: ``/live/a.jpg`` gave the root "//" and the upload was refused as holding
    no image in a folder named live or spoof)."""
    return name.replace("\\", "/").lstrip("/")


def zip_root(names: Iterable[str]) -> str:
    """The folder of a zip holding its live/ and spoof/: "" when they are at its top, else its
    single top folder ("captures/"); LayoutError when the images have no single root. Only top
    folders with a live/ or spoof/ below them count: an image in another one (notes/x.png)
    lies beside live/ and spoof/, not read, as a folder's own files are; and a top folder named
    in capitals (LIVE/) is no label, which the upload's refusal says."""
    images = [PurePosixPath(n).parts for n in names if is_image(n)]
    if any(len(parts) > 1 and parts[0] in LABELS for parts in images):
        return ""
    tops = sorted({parts[0] for parts in images if set(parts[1:-1]) & set(LABELS)})
    if len(tops) > 1:
        raise LayoutError(
            f"live/ and spoof/ must be at the zip's top or below a single top folder, not "
            f"below {', '.join(t + '/' for t in tops[:3])}{' ...' if len(tops) > 3 else ''}"
        )
    return tops[0] + "/" if tops else ""


def miscased(names: Iterable[str]) -> list[str]:
    """The folders of ``names``' images named live or spoof in other case (``LIVE/``,
    ``captures/Spoof/``), sorted: the rule reads lowercase names only."""
    found = set()
    for name in names:
        if not is_image(name):
            continue
        parts = PurePosixPath(name).parts[:-1]
        for at, part in enumerate(parts):
            if part.lower() in LABELS and part not in LABELS:
                found.add("/".join(parts[: at + 1]) + "/")
    return sorted(found)


def buried(names: Iterable[str], root: str) -> list[str]:
    """The folders named live or spoof of ``names``' images below ``root`` deeper than the rule
    reads them (``c/x/live/``: a zip's live/ and spoof/ go at its top or directly in its single
    top folder), sorted: none of their images is read."""
    found = set()
    for name in names:
        if not is_image(name) or not name.startswith(root):
            continue
        parts = PurePosixPath(name[len(root) :]).parts[:-1]
        at = next((at for at, part in enumerate(parts) if part in LABELS), 0)
        if at > 0:
            found.add(root + "/".join(parts[: at + 1]) + "/")
    return sorted(found)


def zip_place(name: str, root: str) -> Placed | None:
    """``name`` (a zip entry's path) placed by the rule below ``root``; None when it is no image
    or lies beside live/ and spoof/; LayoutError when misplaced."""
    if not is_image(name) or not name.startswith(root):
        return None
    parts = PurePosixPath(name[len(root) :]).parts
    if len(parts) < 2 or parts[0] not in LABELS:
        return None
    return place(parts)
