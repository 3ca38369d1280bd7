"""ml.text: what is trimmed from around a name and what is refused in one never overlap; the
look-alike alphabets a name's letters come from."""

import sys

from ml.text import SPACES, alphabets_of, reads_as, refused_in_name, skeleton, trim_spaces


def test_the_spaces_are_every_whitespace_a_name_may_hold() -> None:
    """Every str.isspace() character is either trimmed from a name's ends or refused in a name
    (so a line break at an end is refused, never trimmed unseen), never both."""
    whitespace = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    refused = {c for c in whitespace if refused_in_name(c)}
    assert set(SPACES) == whitespace - refused
    assert refused >= set("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")


def test_trim_spaces_keeps_controls_at_the_ends() -> None:
    assert trim_spaces("\u00a0 Acme Co \u3000") == "Acme Co"
    assert trim_spaces(" \nAcme\t ") == "\nAcme\t"


def test_alphabets_of_names_the_look_alike_alphabets_of_the_letters() -> None:
    assert alphabets_of("fa\u0441ia-system") == ["LATIN", "CYRILLIC"]  # a Cyrillic "с"
    assert alphabets_of("\u03bfps-Ops") == ["LATIN", "GREEK"]  # a Greek omicron
    assert alphabets_of("\u043f\u0435\u0442\u0440\u043e\u0432") == ["CYRILLIC"]
    assert alphabets_of("ops.2@x-y_z+1") == ["LATIN"]  # digits and signs are no letters
    assert alphabets_of("\u5c71\u7530 taro") == ["LATIN"]  # Han is not a look-alike alphabet
    assert alphabets_of("2024") == []


def test_skeleton_is_uts39s_key_of_strings_people_confuse() -> None:
    """Unicode's own prototypes (confusables.txt, as the pinned ``confusables`` package ships
    it): a dotless "ı" is an "i", "rn" an "m", "1" and "I" an "l", "0" an "O", a Cyrillic "с"
    a "c"; "l" and "i", "a" and "e" stay apart."""
    assert skeleton("adm\u0131n") == skeleton("admin")
    assert skeleton("rnallory") == skeleton("mallory")
    assert skeleton("adm1n") == skeleton("admln") == skeleton("admIn")
    assert skeleton("0") == skeleton("O") != skeleton("o")  # case counts, as in the standard
    assert skeleton("\u0441\u043e\u0440") == skeleton("cop")  # all Cyrillic
    assert skeleton("e\u0301") == skeleton("\u00e9")  # decomposed first
    for one, other in [("carl", "cari"), ("anna", "anne"), ("admin", "admln")]:
        assert skeleton(one) != skeleton(other), (one, other)


def test_reads_as_sees_a_letters_compatibility_forms_as_the_letter() -> None:
    """A fullwidth "Ａ", a mathematical bold "𝐀" read as "A", as a zero-width space after it
    reads as nothing: tenants "A" and "Ａ" are listed alike. Case and other scripts' letters
    still tell names apart (a Cyrillic "А")."""
    assert reads_as("\uff21") == reads_as("\U0001d400") == reads_as("A\u200b") == "A"
    assert reads_as("\ufb01le") == "file"  # the ligature "ﬁ"
    assert reads_as("\u3164") == reads_as("\uffa0") == ""  # Hangul fillers, in either width
    assert "a" != reads_as("A") != reads_as("\u0410")
