"""README.md renders as written: parsed with markdown-it-py (CommonMark), every fence is
closed, every `#` line outside code is a heading, and it opens with the title, one sentence,
then `make serve` and `make test`."""

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.conftest import REPO

README = REPO / "README.md"
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6} ")


def parse() -> tuple[list[str], list[Token]]:
    text = README.read_text(encoding="utf-8")
    return text.splitlines(), MarkdownIt("commonmark").parse(text)


def fence_lines(tokens: list[Token]) -> set[int]:
    return {line for t in tokens if t.type == "fence" and t.map for line in range(*t.map)}


def test_every_fence_is_closed() -> None:
    lines, tokens = parse()
    for token in tokens:
        if token.type == "fence" and token.map:
            last = lines[token.map[1] - 1]
            assert FENCE.match(last), f"fence opened on line {token.map[0] + 1} is never closed"
    inside = fence_lines(tokens)
    stray = [n + 1 for n, line in enumerate(lines) if FENCE.match(line) and n not in inside]
    assert not stray, f"fence markers that open or close nothing: lines {stray}"


def test_every_section_heading_is_a_heading() -> None:
    lines, tokens = parse()
    inside = fence_lines(tokens)
    headings = {t.map[0] for t in tokens if t.type == "heading_open" and t.map}
    written = {n for n, line in enumerate(lines) if HEADING.match(line) and n not in inside}
    assert written == headings, sorted(n + 1 for n in written ^ headings)
    titles = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    for section in ("API", "A client", "Performance", "Soak", "Layout"):
        assert section in titles, section


def test_opens_with_title_sentence_and_the_two_commands() -> None:
    _, tokens = parse()
    blocks = [t for t in tokens if t.level == 0 and not t.type.endswith("_close")]
    title, intro, commands = blocks[0], blocks[1], blocks[2]
    assert title.type == "heading_open" and title.tag == "h1"
    assert intro.type == "paragraph_open"
    sentence = tokens[tokens.index(intro) + 1].content
    assert len(re.findall(r"[.!?](?:\s|$)", sentence)) == 1, sentence
    assert commands.type == "fence" and commands.content == "make serve\nmake test\n"
