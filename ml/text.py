"""Text from outside (a data set's manifest, a client's request line) made safe to print on an
operator's terminal or in a line-based log."""

# Control characters as a Python literal writes them ("\n" -> "\\n", ESC -> "\\x1b"): C0, DEL,
# C1 and the Unicode line and paragraph separators; a backslash stays as it is.
_ESCAPED = {
    code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


def escape_controls(text: str) -> str:
    """``text`` with its control characters escaped: it can neither start a line nor send an
    escape sequence to a terminal."""
    return text.translate(_ESCAPED)
