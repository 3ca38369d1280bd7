"""ml.text: what is trimmed from around a name and what is refused in one never overlap."""

import sys

from ml.text import SPACES, refused_in_name, trim_spaces


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
