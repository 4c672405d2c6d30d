"""Saved web pages (.html/.htm): the main text and its headings, without navigation or code.

Parsed with selectolax (lexbor). Navigation, headers, footers, sidebars, forms, script and
style are removed first; the text of `<main>` (else `<article>`, else `<body>`) comes out as
Markdown-like lines: `#` headings at their `<h1>`-`<h6>` level, one paragraph per block
element, table rows tab-separated, so the cleaner builds section paths and tables as it
does for text files.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.load import Loaded, LoadError, decode, register

NO_TEXT = "HTMLに本文がありません"

_DROP = "script, style, noscript, template, nav, aside, form, iframe, svg, canvas, button, select"
_PAGE_CHROME = "header, footer"  # the site's, not an article's own header (which holds its <h1>)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {
    "address", "article", "blockquote", "caption", "dd", "details", "div", "dl", "dt", "figcaption", "figure",
    "li", "main", "ol", "p", "pre", "section", "summary", "ul", "tr", "td", "th", "hr",
}  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\r\n\u00a0]+")
_CJK = "\u3000-\u30ff\u3400-\u9fff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")


def _inline(text: str) -> str:
    """Collapse source whitespace; a line break between Japanese characters is no space."""
    return _CJK_GAP.sub("", _SPACE.sub(" ", text)).strip()


def _decode(data: bytes) -> tuple[str, str]:
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        encoding = declared.group(1).decode("ascii").lower()
        try:
            return data.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: detect instead
    return decode(data)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buffer: list[str] = []

    def flush(self) -> None:
        text = _inline("".join(self.buffer))
        self.buffer = []
        if text and text != "・":
            self.lines += [text, ""]

    def add(self, line: str) -> None:
        self.flush()
        if line:
            self.lines += [line, ""]

    def walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.buffer.append(child.text_content or "")
            elif tag in _HEADINGS:
                self.add(f"{'#' * _HEADINGS[tag]} {_inline(child.text(deep=True))}" if child.text(deep=True) else "")
            elif tag == "table":
                self.flush()
                rows = [_row(tr) for tr in child.css("tr")]
                self.lines += [r for r in rows if r] + [""]
            elif tag == "br":
                self.flush()
            elif tag == "li":  # a bullet, so the cleaner keeps items apart
                self.flush()
                self.buffer.append("・")
                self.walk(child)
                self.flush()
            elif tag in _BLOCKS:
                self.flush()
                self.walk(child)
                self.flush()
            elif tag != "-comment":
                self.walk(child)


def _row(tr: LexborNode) -> str:
    cells = [_inline(cell.text(deep=True)) for cell in tr.iter() if cell.tag in ("td", "th")]
    return "\t".join(c for c in cells if c)


def _inside(node: LexborNode, tags: tuple[str, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def html_lines(html: str) -> list[str]:
    tree = LexborHTMLParser(html)
    for node in tree.css(_DROP):
        node.decompose()
    for node in tree.css(_PAGE_CHROME):
        if not _inside(node, ("main", "article")):
            node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.css_first("[role=main]") or tree.body
    out = _Lines()
    if root is not None:
        out.walk(root)
        out.flush()
    title = tree.css_first("title")
    if title is not None and not any(line.startswith("# ") for line in out.lines):
        out.lines[:0] = [_inline(title.text()), ""]  # a page without <h1>: its <title> names it
    return out.lines


@register(".html", ".htm")
def load_html(data: bytes) -> Loaded:
    html, encoding = _decode(data)
    lines = html_lines(html)
    if not any(line.strip() for line in lines):
        raise LoadError(NO_TEXT)
    return Loaded("\n".join(lines), encoding)
