"""ml.anonymised: what an evaluation's stored report keeps of its data set (the real command's
stored reports: tests/calibration/test_evaluate.py)."""

from typing import Any

from ml.anonymised import anonymised


def presentation(file: str, source: str, subject: str = "") -> dict[str, Any]:
    return {
        "file": file,
        "label": file.split("/")[0],
        "species": "none",
        "failures": [],
        "scores": {"minifasnet_v2": 0.9},
        "measures": {"luma": 120.0},
        "capture": "frame",
        "source": source,
        "subject": subject,
    }


def test_group_folders_are_numbered_manifest_sources_kept_and_never_merged() -> None:
    """A group folder (its name often a person's or a case's) is numbered; a manifest's source
    is kept as written, even one that reads like a number given to a folder, which the folders'
    numbers then skip (two sources merged would change every per-source figure)."""
    report = {
        "folder": "/data/cases",
        "tenant": "Bank",
        "samples": [
            presentation("live/Jane-Doe/a.jpg", "Jane-Doe", "CUST-9"),
            presentation("live/b.jpg", "folder 1", "CUST-2"),
            presentation("spoof/Jane-Doe/c.jpg", "kiosk", "CUST-9"),  # the manifest's source
            presentation("spoof/Abe/d.jpg", "Abe"),
        ],
        "iso": {"scopes": [{"name": n, "kind": "source"} for n in ("Abe", "Jane-Doe", "kiosk")]},
    }
    kept = anonymised(report)
    assert "folder" not in kept and "tenant" not in kept
    assert [(s["index"], s["source"], s["subject"]) for s in kept["samples"]] == [
        (1, "folder 3", "subject 1"),
        (2, "folder 1", "subject 2"),
        (3, "kiosk", "subject 1"),
        (4, "folder 2", ""),
    ]
    assert all("file" not in s for s in kept["samples"])
    assert kept["samples"][0]["scores"] == {"minifasnet_v2": 0.9}
    assert [s["name"] for s in kept["iso"]["scopes"]] == ["folder 2", "folder 3", "kiosk"]
    assert anonymised(kept) == kept  # stored again (migrated back and forth): unchanged
    many = {"samples": [presentation(f"live/{i}.jpg", "s", f"c{i}") for i in range(12)]}
    assert anonymised(anonymised(many)) == anonymised(many)  # "subject 10" keeps its number
