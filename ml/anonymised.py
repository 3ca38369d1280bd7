"""What an evaluation's stored report keeps of its data set: figures, and per presentation only
what they are computed from, never a name that may be a person's.

``manage.py evaluate`` stored its whole report: every image's path (``live/Jane-Doe-19800101/
apfol_1.png``), the data set's folder, the tenant's name and the manifest's subject ids, shown
in the admin and kept for ever (24 images in three such group folders: the stored report named
Jane-Doe-19800101 17 times). A bank evaluates its own customers' captures, named by case or
customer id. The stored form (``anonymised``) keeps, per presentation, an index, its label, PAI
species, the gates' failures and measures, each model's score, its capture kind, and its
source and subject as the figures need them:

- a source named by the manifest's ``source`` column is kept as written (the per-source table
  shows it: the data set's author named a capture channel or a data set there);
- a source that is a group folder's name (``live/<group>/x.jpg`` without a manifest source,
  or with one equal to the folder's name) becomes ``folder 1``, ``folder 2``, ... in the order
  of the names (the by-source table's, on the terminal too): such folders often name a person
  or a case;
- a subject becomes ``subject 1``, ``subject 2``, ... within the one report, in the order its
  presentations come: the two-stage bootstrap needs only which presentations share a subject.

Its file, the folder and the tenant's name are dropped (the evaluation's row links its tenant).
The same mapping renames the ISO report's per-source scopes and, in a report stored before it,
``by_source``'s keys, so the figures recomputed from the stored presentations (the tenant
form's held-out figures) match the stored ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

# The keys of a stored presentation besides its index (ml.evaluate.Sample's fields but ``file``).
KEPT = ("label", "species", "failures", "scores", "measures", "capture", "source", "subject")
# The report's keys that name the data set or the tenant, dropped.
DROPPED = ("folder", "tenant")


def group_folder(file: str) -> str:
    """The group folder of a presentation's path in its data set (``live/<group>/x.jpg``), ""
    for one directly in ``live/`` or ``spoof/``."""
    parts = PurePosixPath(file).parts
    return parts[1] if len(parts) == 3 else ""


def folder_sources(samples: Iterable[Mapping[str, Any]]) -> set[str]:
    """The sources that are a group folder's name: some presentation of the source lies in a
    folder of that name."""
    return {
        s["source"]
        for s in samples
        if s.get("source") and s["source"] == group_folder(str(s.get("file") or ""))
    }


def numbered(names: Iterable[str], word: str, taken: Collection[str] = ()) -> dict[str, str]:
    """Each of ``names``, in their order -> "word 1", "word 2", ...; a label in ``taken`` (a
    source kept as written) is skipped, so two sources never merge."""
    found: dict[str, str] = {}
    n = 0
    for name in dict.fromkeys(names):
        n += 1
        while f"{word} {n}" in taken:
            n += 1
        found[name] = f"{word} {n}"
    return found


def _sample(
    index: int, s: Mapping[str, Any], sources: dict[str, str], subjects: dict[str, str]
) -> dict[str, Any]:
    kept = {k: s[k] for k in KEPT if k in s}
    source = str(kept.get("source") or "")
    kept["source"] = sources.get(source, source)
    kept["subject"] = subjects.get(str(kept.get("subject") or ""), "")
    return {"index": index, **kept}


def _scope(scope: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    if scope.get("kind") != "source":
        return scope
    return {**scope, "name": sources.get(scope["name"], scope["name"])}


def _iso(iso: dict[str, Any] | None, sources: dict[str, str]) -> dict[str, Any] | None:
    if not iso:
        return iso
    return {**iso, "scopes": [_scope(s, sources) for s in iso.get("scopes") or []]}


def anonymised(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` (ml.evaluate.Report.to_dict(), or a report stored before this form) as it is
    stored: no file, folder or tenant name, group folders and subjects numbered."""
    samples: list[dict[str, Any]] = report.get("samples") or []
    folders = folder_sources(samples)
    named = {str(s.get("source") or "") for s in samples} - folders
    sources = numbered(sorted(folders), "folder", taken=named)
    # in the order they first appear: stored again (the migration on a stored report), the
    # numbers stay (sorted, "subject 10" would come before "subject 2" and take its number)
    subjects = numbered((str(s["subject"]) for s in samples if s.get("subject")), "subject")
    found = {k: v for k, v in report.items() if k not in DROPPED}
    if "samples" in report:
        found["samples"] = [_sample(i, s, sources, subjects) for i, s in enumerate(samples, 1)]
    if "iso" in report:
        found["iso"] = _iso(report["iso"], sources)
    if isinstance(report.get("by_source"), dict):  # a report stored before the ISO report
        found["by_source"] = {sources.get(k, k): v for k, v in report["by_source"].items()}
    return found
