"""What a person reads on a page: its visible text, and the two things it must never show (a
raw JSON dump, a float with more than 6 decimals). The admin tests (test client) and the
console's browser test read pages with these."""

import re
from html.parser import HTMLParser

# An object dump: {"key": ... or {'key': ... (Python's repr of a dict is as raw).
RAW_JSON = re.compile(r"""\{\s*["'][^"']{1,80}["']\s*:""")
# 7 decimals or more: 0.7246717604179921, 19.752186999994592.
LONG_FLOAT = re.compile(r"\d\.\d{7,}")


class _Text(HTMLParser):
    HIDDEN = {"script", "style", "template", "head"}
    # Elements that break a line (a space between their texts); inline ones join theirs.
    BLOCKS = {"br", "div", "li", "p", "td", "th", "tr", "h1", "h2", "h3", "ul", "table", "option"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The page's text without its tags, attributes (a title's exact value), scripts and
    styles."""
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


def unreadable(text: str) -> list[str]:
    """What in ``text`` a person should not have to read: JSON dumps and long floats."""
    return [m.group(0) for m in (*RAW_JSON.finditer(text), *LONG_FLOAT.finditer(text))]
