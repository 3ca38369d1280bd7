"""ml.labelled: the one rule of where a data set's images sit, for a folder and a zip."""

import pytest

from ml.labelled import LayoutError, Placed, miscased, place, zip_name, zip_place, zip_root


def test_an_image_sits_in_its_labels_folder_or_one_group_below() -> None:
    assert place(("live", "a.jpg")) == Placed("live", "", "live/a.jpg")
    assert place(("spoof", "kiosk", "b.png")) == Placed("spoof", "kiosk", "spoof/kiosk/b.png")


@pytest.mark.parametrize(
    ("parts", "said"),
    [
        (("live", "spoof", "z.jpg"), "live/spoof/z.jpg: a spoof/ folder inside live/"),
        (("spoof", "live", "z.jpg"), "spoof/live/z.jpg: a live/ folder inside spoof/"),
        (("live", "a", "b", "z.jpg"), "live/a/b/z.jpg: too deep"),
    ],
)
def test_anywhere_else_is_refused_naming_the_path(parts: tuple[str, ...], said: str) -> None:
    with pytest.raises(LayoutError, match=f"^{said}"):
        place(parts)


def test_a_zips_root_is_its_top_or_its_single_top_folder() -> None:
    assert zip_root(["live/a.jpg", "spoof/b.jpg", "notes.txt"]) == ""
    assert zip_root(["c/live/a.jpg", "c/spoof/b.jpg", "top.jpg"]) == "c/"
    with pytest.raises(LayoutError, match="not below a/, b/"):
        zip_root(["a/live/x.jpg", "b/spoof/y.jpg"])


def test_a_zips_entries_are_placed_below_its_root() -> None:
    assert zip_place("c/live/g/a.jpg", "c/") == Placed("live", "g", "live/g/a.jpg")
    assert zip_place("c/other/a.jpg", "c/") is None  # beside live/ and spoof/
    assert zip_place("c/live/notes.txt", "c/") is None  # no image
    with pytest.raises(LayoutError, match="^live/spoof/z.jpg: a spoof/ folder inside live/"):
        zip_place("c/live/spoof/z.jpg", "c/")


def test_only_top_folders_with_live_or_spoof_below_count_for_the_root() -> None:
    """An audit's zip: captures/live, captures/spoof and a stray notes/readme.png was refused
    as "not below captures/, notes/", though notes/ holds no live/ or spoof/ and files beside
    them are not read; LIVE/ and SPOOF/ were "not below LIVE/, SPOOF/" where the problem is
    their capitals."""
    names = ["captures/live/a.jpg", "captures/spoof/b.jpg", "notes/readme.png"]
    assert zip_root(names) == "captures/"
    assert zip_place("notes/readme.png", "captures/") is None  # beside them: not read
    assert zip_root(["LIVE/a.jpg", "SPOOF/b.jpg"]) == ""  # no label: refused as holding none
    assert miscased(["LIVE/a.jpg", "c/Spoof/g/b.png", "live/c.jpg", "LIVE/x.txt"]) == [
        "LIVE/",
        "c/Spoof/",
    ]
    with pytest.raises(LayoutError, match="not below a/, b/"):
        zip_root(["a/live/x.jpg", "b/c/spoof/y.jpg", "notes/z.png"])  # spoof/ deeper: counts


def test_a_zip_name_is_read_without_a_leading_slash() -> None:
    """/live/a.jpg (the zip format forbids the slash; tools write it) gave the root "//"."""
    names = [zip_name(n) for n in ("/live/a.jpg", "/spoof/b.jpg", "captures\\live\\c.jpg")]
    assert names == ["live/a.jpg", "spoof/b.jpg", "captures/live/c.jpg"]
    assert zip_root(names[:2]) == ""
