"""README.md and the pages in docs/ render as written: parsed with markdown-it-py (CommonMark),
every fence is closed, every `#` line outside code is a heading. The README opens with the
title, one sentence, then `make serve` and `make test`, stays under 150 lines, and its map
links every page of docs/ (each link and anchor resolves; tests/docs/test_docs.py checks the
links between the pages with `mkdocs build --strict`)."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from markdown.extensions.toc import slugify
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6} ")
# Where the README's former sections now live.
SECTIONS = {
    "API": "integrator/api.md",
    "A client": "integrator/client.md",
    "Performance": "evaluator/performance.md",
    "Soak": "evaluator/performance.md",
    "Layout": "contributor/architecture.md",
}


def parse(path: Path = README) -> tuple[list[str], list[Token]]:
    text = path.read_text(encoding="utf-8")
    return text.splitlines(), MarkdownIt("commonmark").parse(text)


def fence_lines(tokens: list[Token]) -> set[int]:
    return {line for t in tokens if t.type == "fence" and t.map for line in range(*t.map)}


def titles(tokens: list[Token]) -> list[str]:
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]


def anchors(path: Path) -> set[str]:
    """The ids MkDocs gives the page's headings (Python-Markdown's toc slugify of the text)."""
    _, tokens = parse(path)
    texts = [
        "".join(
            c.content for c in tokens[i + 1].children or [] if c.type in ("text", "code_inline")
        )
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    return {slugify(text, "-") for text in texts}


def links(tokens: list[Token]) -> list[str]:
    found = []
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
    return found


def test_there_are_docs_pages() -> None:
    assert len(PAGES) >= 10, PAGES


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_every_fence_is_closed(path: Path) -> None:
    lines, tokens = parse(path)
    for token in tokens:
        if token.type == "fence" and token.map:
            last = lines[token.map[1] - 1]
            assert FENCE.match(last), f"fence opened on line {token.map[0] + 1} is never closed"
    inside = fence_lines(tokens)
    stray = [n + 1 for n, line in enumerate(lines) if FENCE.match(line) and n not in inside]
    assert not stray, f"fence markers that open or close nothing: lines {stray}"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_every_section_heading_is_a_heading(path: Path) -> None:
    lines, tokens = parse(path)
    inside = fence_lines(tokens)
    headings = {t.map[0] for t in tokens if t.type == "heading_open" and t.map}
    written = {n for n, line in enumerate(lines) if HEADING.match(line) and n not in inside}
    assert written == headings, sorted(n + 1 for n in written ^ headings)


@pytest.mark.parametrize(("section", "page"), SECTIONS.items())
def test_each_former_readme_section_has_its_page(section: str, page: str) -> None:
    _, tokens = parse(DOCS / page)
    assert section in titles(tokens), section


def test_opens_with_title_sentence_and_the_two_commands() -> None:
    _, tokens = parse()
    blocks = [t for t in tokens if t.level == 0 and not t.type.endswith("_close")]
    title, intro, commands = blocks[0], blocks[1], blocks[2]
    assert title.type == "heading_open" and title.tag == "h1"
    assert intro.type == "paragraph_open"
    sentence = tokens[tokens.index(intro) + 1].content
    assert len(re.findall(r"[.!?](?:\s|$)", sentence)) == 1, sentence
    assert commands.type == "fence" and commands.content == "make serve\nmake test\n"


def test_readme_is_short() -> None:
    lines, _ = parse()
    assert len(lines) < 150, len(lines)


def test_readme_links_resolve_to_pages_and_anchors() -> None:
    _, tokens = parse()
    local = [href for href in links(tokens) if not urlsplit(href).scheme]
    assert local
    for href in local:
        parts = urlsplit(href)
        target = (REPO / parts.path).resolve()
        assert target.is_file(), href
        if parts.fragment:
            assert parts.fragment in anchors(target), href


def test_readme_map_links_every_docs_page() -> None:
    _, tokens = parse()
    linked = {(REPO / urlsplit(href).path).resolve() for href in links(tokens)}
    assert not set(PAGES) - linked - {DOCS / "index.md"}, sorted(set(PAGES) - linked)


def test_the_sites_home_page_links_every_page_too() -> None:
    """docs/index.md, the site's home, is the same map by reader: no page (the head-turn
    challenge's evaluator page, say) reached only through the navigation."""
    _, tokens = parse(DOCS / "index.md")
    linked = {(DOCS / urlsplit(href).path).resolve() for href in links(tokens)}
    assert not set(PAGES) - linked - {DOCS / "index.md"}, sorted(set(PAGES) - linked)


def test_the_seed_contract_is_one_link_from_the_readme() -> None:
    _, tokens = parse()
    assert "docs/integrator/api.md#post-liveness" in links(tokens)
    api = (DOCS / "integrator/api.md").read_text(encoding="utf-8")
    for text in (
        '{"hash_id": "your_hash_id", "selfie_image": "data:image/jpeg;base64,/9j/4AAQ..."}',
        "| success | 201 |",
        '{"liveness_result": {"is_live": 1, "liveness_score": 0.9862353}, "message": "Success"}',
        '{"message": "Invalid credentials"}',
        '{"message": "Your request limit has been reached."}',
        '{"error": "Selfie_image is required and must be a JPEG, JPG or PNG."}',
    ):
        assert text in api, text
