"""Repair PDF-extraction artifacts and recover the document's block structure.

Works line by line so that every character of the cleaned text keeps the number
of the source line it came from (`Block.lines`), which is what citations show.
Characters keep their original width here; NFKC is applied only to the search
form (`rag.text.normalize`), so users see the document as it was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.text import join_spaced_ai, squash

CLEANER_VERSION = "clean-v8"


@dataclass
class Line:
    no: int  # 1-based line number in the source file
    text: str
    numbered: bool = False  # carried a page line number (body text of a line-numbered PDF)


@dataclass
class Block:
    """A paragraph, heading, table or footnote of the cleaned document."""

    kind: str  # "heading" | "para" | "table" | "footnote"
    text: str
    lines: list[int]  # source line number of each character of `text`
    heading_key: str = ""
    heading_rank: int = 0
    refers_to: str = ""  # footnotes: the body term carrying the mark (ハルシネーション³ → "ハルシネーション")

    def span(self) -> tuple[int, int]:
        return (min(self.lines), max(self.lines)) if self.lines else (0, 0)


@dataclass
class CleanDoc:
    name: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    line_pages: tuple[int, ...] = ()  # page of each source line (PDF), so chunks can name their pages

    def page_of(self, line: int) -> int | None:
        """The 1-based page of a 1-based source line, or None when the document has no pages."""
        if not self.line_pages:
            return None
        return self.line_pages[min(max(line, 1), len(self.line_pages)) - 1]

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


# --- line numbers -------------------------------------------------------------

_LEADING_NUMBER = re.compile(r"^(?:[-*]\s+)?(\d{1,2})(?:[\t ]+|$)")
_TRAILING_NUMBER = re.compile(r"(\d{1,2})\s*$")
_PAGE_LINES = 45  # a PDF page never has more numbered lines than this
_MAX_SKIP = 3  # extraction sometimes drops a few numbers (4 → 6)


def _trailing_number(text: str, accept) -> re.Match | None:
    """The line-number suffix. Two digits are preferred; one digit only when two do not fit
    (`（20249` is the year 2024 and line 9 when line 9 is expected)."""
    readings = [re.search(rf"(\d{{{digits}}})\s*$", text) for digits in (2, 1)]
    return next((m for m in readings if m and accept(int(m.group(1)))), None)


def _leading_number(text: str, accept) -> re.Match | None:
    m = _LEADING_NUMBER.match(text)
    return m if m and accept(int(m.group(1))) else None


def _follows(number: int):
    """Accepts a line number that can come after `number` on the same page."""
    return lambda n: number < n <= number + _MAX_SKIP


def _sequence_start(text_lines: list[Line], i: int, find) -> re.Match | None:
    """A number that opens a sequence: 1-3 followed by its successor (new page), or any
    number followed by two successors (a text that starts mid-page)."""
    nxt = text_lines[i + 1].text if i + 1 < len(text_lines) else ""
    after = text_lines[i + 2].text if i + 2 < len(text_lines) else ""
    first = find(text_lines[i].text, lambda n: True)
    if first is None:
        return None
    number = int(first.group(1))
    second = find(nxt, _follows(number))
    if second is None:
        return None
    if number <= 3 or find(after, _follows(int(second.group(1)))):
        return first
    return None


def _mark_numbers(lines: list[Line], find) -> int:
    """Strip a running page-line-number sequence found by `find`; return how many lines had one.

    A number counts only when it continues the sequence (n, n+1, allowing a
    small skip) or starts a new page (1-3 followed by its successor), so a
    year or article number at a line edge is not mistaken for one.
    """
    text_lines = [ln for ln in lines if ln.text.strip()]
    expected: int | None = None
    count = 0
    for i, line in enumerate(text_lines):
        m = None
        if expected is not None:
            m = find(line.text, lambda n, e=expected: e <= n <= e + _MAX_SKIP)
        if m is None:
            m = _sequence_start(text_lines, i, find)
        if m is None:
            continue
        number = int(m.group(1))
        line.text = (line.text[: m.start()] + line.text[m.end() :]).rstrip(" \u3000")
        line.numbered = True
        expected = number + 1 if number < _PAGE_LINES else None
        count += 1
    return count


def strip_line_numbers(lines: list[Line]) -> str:
    """Remove page line numbers at line ends (000-style) or starts (004-style); return which side."""
    text_count = sum(1 for ln in lines if ln.text.strip())
    for side, find in (("end", _trailing_number), ("start", _leading_number)):
        trial = [Line(ln.no, ln.text) for ln in lines]
        if _mark_numbers(trial, find) >= 0.3 * max(text_count, 1):
            for line, done in zip(lines, trial):
                line.text, line.numbered = done.text, done.numbered
            return side
    return ""


# --- inline markup --------------------------------------------------------------

_SUP_TAG = re.compile(r"<sup>[^<]{0,8}</sup>")
_SIMPLE_TAG = re.compile(r"</?(?:sub|br|span|b|i|u)\b[^>]{0,40}>", re.IGNORECASE)
_SUPERSCRIPT_DIGITS = re.compile(r"[⁽⁾⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ESCAPE = re.compile(r"\\([_*\[\]#()`])")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_PRIVATE_USE_BULLET = re.compile(r"[\ue000-\uf8ff]")  # Wingdings bullets from the PDF
# footnote marks left inline by the extraction: 「広島 AI プロセス 1」, 電子透かし 7や, 状況である 9。
_KANA_KANJI = "\u3040-\u30ff\u4e00-\u9fff"
_FOOTNOTE_REF = re.compile(rf"(?<=[^\d\s]) \d{{1,2}}(?=」)|(?<=[{_KANA_KANJI}]) \d{{1,2}}(?=[{_KANA_KANJI}。、])")


def clean_inline(text: str) -> str:
    """Remove footnote marks and markdown/HTML markup; join `A I`. Keeps `#` heading marks."""
    text = _SUP_TAG.sub("", text)
    text = _SIMPLE_TAG.sub("", text)
    text = _SUPERSCRIPT_DIGITS.sub("", text)
    text = _ESCAPE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _PRIVATE_USE_BULLET.sub("・", text)
    return join_spaced_ai(text).rstrip()


# --- lines to drop ----------------------------------------------------------------

_PAGE_NUMBER = re.compile(r"^\s*[-－—‐]?\s*\d{1,3}\s*[-－—‐]?\s*$")
_DOT_LEADER = re.compile(r"(\.{4,}|…{2,}|‥{2,}|・{4,}|\.{2,}\s*\t\s*\d+\s*$)")
_URL_ONLY = re.compile(r"^\s*(?:https?://\S+|www\.\S+)\s*$")
# the wrapped tail of a long footnote URL: one ASCII token with a path separator or file suffix
_URL_FRAGMENT = re.compile(r"^\s*[A-Za-z0-9_\-./%#?=&~:\\]*(?:/|\.pdf|\.html?)[A-Za-z0-9_\-./%#?=&~:\\]*\s*$")
_LEADING_NOTE_NUMBER = re.compile(r"^\s*\d{1,3}\s+(?=\S*(?:https?://|www\.))")
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_TOC_TITLES = {"目次", "全体構成", "contents", "tableofcontents"}


_TOC_PAGE = re.compile(r"(\.{2,}|…|\s)\s*\d{1,3}\s*$")


def _is_toc_entry(text: str) -> bool:
    """Inside a table of contents: entries carry tabs, dot leaders or a trailing page number."""
    return "\t" in text or bool(_DOT_LEADER.search(text) or _TOC_PAGE.search(text)) or not text.strip()


def drop_noise(lines: list[Line]) -> list[Line]:
    """Drop page numbers, rules, URL-only lines and table-of-contents entries."""
    kept: list[Line] = []
    in_toc = False
    for line in lines:
        text = line.text
        if squash(text).lower() in _TOC_TITLES:
            in_toc = True
            continue
        if in_toc:
            if _is_toc_entry(text) or _PAGE_NUMBER.match(text):
                continue
            in_toc = False
        if _DOT_LEADER.search(text) or _PAGE_NUMBER.match(text) or _RULE.match(text):
            continue
        plain = _LEADING_NOTE_NUMBER.sub("", clean_inline(text))
        if _URL_ONLY.match(plain) or _URL_FRAGMENT.match(plain):
            continue
        kept.append(line)
    return kept


# --- footnotes ----------------------------------------------------------------------

_MD_FOOTNOTE = re.compile(r"^\s*<sup>\d{1,3}</sup>\s*")
_SUPERSCRIPT_FOOTNOTE = re.compile(r"^\s*[⁽⁾⁰¹²³⁴⁵⁶⁷⁸⁹]+\s*")
_NUMBERED_FOOTNOTE = re.compile(r"^\s*\d{1,2} (?=\S)")


_SUPERSCRIPT_TO_DIGIT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789", "⁽⁾")


def _mark_number(mark: str) -> str:
    """The footnote number of a definition's leading mark (`³`, `¹⁹⁾`, `<sup>3</sup>`, `3 `)."""
    return re.sub(r"\D", "", mark.translate(_SUPERSCRIPT_TO_DIGIT))


def extract_footnotes(lines: list[Line], trailing_numbers: bool) -> tuple[list[Line], list[tuple[str, list[Line]]]]:
    """Split footnote definitions, as (number, lines), out of the running text.

    Footnotes sit at page ends, often in the middle of a sentence that goes on
    on the next page; taking them out lets that sentence be joined again.
    """
    body: list[Line] = []
    notes: list[tuple[str, list[Line]]] = []
    current: list[Line] | None = None
    for line in lines:
        raw = line.text
        m = _MD_FOOTNOTE.match(raw) or _SUPERSCRIPT_FOOTNOTE.match(raw)
        if m is None and trailing_numbers and not line.numbered:
            m = _NUMBERED_FOOTNOTE.match(raw)
        if m is not None:
            current = [Line(line.no, raw[m.end() :])]
            notes.append((_mark_number(m.group(0)), current))
            continue
        if current is not None:
            continues = raw.strip() and not line.numbered and not raw.lstrip().startswith("#")
            if trailing_numbers and continues:
                current.append(line)
                continue
            if not raw.strip() and not trailing_numbers:
                current = None
                continue
            current = None
        body.append(line)
    return body, notes


# The term a superscript or <sup> mark follows: a katakana word, an ASCII word, or a kanji compound.
_TERM_BEFORE_MARK = re.compile(r"([ァ-ヺー・]{2,}|[A-Za-z][A-Za-z0-9\-]*|[一-鿿々]{2,})$")
_INLINE_MARK = re.compile(r"<sup>(\d{1,3})</sup>|([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾?")


def footnote_terms(body: list[Line]) -> dict[str, str]:
    """Footnote number → the body term its mark follows (first occurrence), so a definition that
    lives only in a footnote can be found by the word it defines."""
    terms: dict[str, str] = {}
    for line in body:
        marks = [(m.start(), m.group(1) or _mark_number(m.group(2))) for m in _INLINE_MARK.finditer(line.text)]
        marks += [(m.start(), m.group().strip()) for m in _FOOTNOTE_REF.finditer(line.text)]  # 「リスク 13に」
        for start, number in sorted(marks):
            before = _TERM_BEFORE_MARK.search(join_spaced_ai(line.text[:start]))
            if before and number not in terms:
                terms[number] = before.group(1)
    return terms


# --- headings ------------------------------------------------------------------------

_KANJI_NUM = "0-9０-９一二三四五六七八九十"
_HEADING_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("chapter", re.compile(rf"^第[{_KANJI_NUM}]+章")),
    ("section", re.compile(rf"^第[{_KANJI_NUM}]+節")),
    ("roman", re.compile(r"^(?:[IVX]{1,4}|[Ⅰ-Ⅻ])[.．]\s*\S")),
    ("num_dot", re.compile(r"^[0-9０-９]{1,2}[.．](?![0-9０-９])\s*\S")),
    ("num_space", re.compile(r"^[0-9０-９]{1,2}[ \u3000]+\S")),
    ("paren_num", re.compile(r"^[（(][0-9０-９]{1,2}[)）]\s*\S")),
    ("circled", re.compile(r"^[①-⑳]\s*\S")),
    ("num_paren", re.compile(r"^[0-9０-９]{1,2}[)）]\s*\S")),
    ("alpha_paren", re.compile(r"^[a-zａ-ｚ][)）]\s*\S")),
    ("paren_title", re.compile(r"^[（(][^()（）]{2,40}[)）]$")),
]
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_DOTTED = re.compile(r"^\d+(?:\.\d+)*(?=\s)")
MAX_HEADING_CHARS = 70


_TRAILING_NOTE_MARK = re.compile(r"\s+\d{1,2}$")


def heading_of(text: str, after_blank: bool = True) -> tuple[str, int, str] | None:
    """(pattern key, rank, title) when the line is a heading, else None.

    A bare parenthesized line counts only after a blank line: inside slide
    text such lines are captions like `(自動化、最適化)`.
    """
    m = _MD_HEADING.match(text)
    if m:
        # the source's `#` levels are inconsistent; a numbering style in the title is a better guide
        title = m.group(2).strip()
        dotted = _DOTTED.match(title)
        if dotted:
            depth = dotted.group(0).count(".") + 1
            return f"dotted{depth}", depth, title
        styled = next((key for key, pattern in _HEADING_PATTERNS if pattern.match(title)), None)
        if styled:
            return styled, 0, title
        return (f"md{len(m.group(1))}", len(m.group(1)), title) if title else None
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_HEADING_CHARS or "\t" in stripped:
        return None
    if stripped[-1] in "。．、，,：:":
        return None
    for key, pattern in _HEADING_PATTERNS:
        if pattern.match(stripped):
            if key == "paren_title" and not after_blank:
                return None
            return key, 0, _TRAILING_NOTE_MARK.sub("", stripped)
    return None


# --- blocks ----------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*○]\s+|[•●◦▪■□◆◇➡→▶✓・]\s*)+")
_SENTENCE_END = "。！？!?"


def _is_table_row(text: str) -> bool:
    return sum(1 for cell in text.split("\t") if cell.strip()) >= 2


def _is_bullet(text: str) -> bool:
    return bool(_BULLET.match(text)) or text.lstrip()[:1] in "①②③④⑤⑥⑦⑧⑨⑩"


def _joiner(left: str, right: str) -> str:
    """Hard-wrapped Japanese joins with nothing; Latin words need their space back."""
    if left and right and left[-1].isascii() and left[-1].isalnum() and right[0].isascii() and right[0].isalnum():
        return " "
    return ""


class _BlockBuilder:
    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def add_block(self, kind: str, text: str, line_no: int, key: str = "", rank: int = 0) -> Block:
        block = Block(kind, text, [line_no] * len(text), key, rank)
        self.blocks.append(block)
        return block

    @staticmethod
    def extend(block: Block, text: str, line_no: int, sep: str) -> None:
        block.text += sep + text
        block.lines += [line_no] * (len(sep) + len(text))


def _normalize_bullet(text: str) -> str:
    return _BULLET.sub("・", text, count=1) if _BULLET.match(text) else text


def build_blocks(lines: list[Line], line_numbered: bool) -> list[Block]:
    """Group lines into headings, paragraphs (hard wraps joined) and table rows."""
    out = _BlockBuilder()
    current: Block | None = None
    last_line: Line | None = None
    blank_since_last = False
    for line in lines:
        raw = line.text
        if not raw.strip():
            blank_since_last = True
            continue
        text = clean_inline(raw)
        # in a line-numbered PDF only numbered (body) lines can be headings, not figure text
        body_line = line.numbered or not line_numbered
        heading = body_line and heading_of(text, after_blank=blank_since_last or last_line is None)
        md = _MD_HEADING.match(text)
        if heading:
            current = out.add_block("heading", heading[2], line.no, heading[0], heading[1])
        elif _wraps_heading(current, text, blank_since_last):
            # 「② 中小企業における…A I導」+「入促進【経産省】」: a wrapped list item, not a heading
            current.kind, current.heading_key, current.heading_rank = "para", "", 0
            out.extend(current, text.strip(), line.no, _joiner(current.text, text.strip()))
        elif _is_table_row(text):
            cells = "\t".join(c.strip() for c in text.split("\t") if c.strip())
            if current is not None and current.kind == "table" and not blank_since_last:
                out.extend(current, cells, line.no, "\n")
            else:
                current = out.add_block("table", cells, line.no)
        else:
            text = _normalize_bullet((md.group(2) if md else text).replace("\t", " ").strip())
            if not text:
                continue
            if current is not None and _continues(current, last_line, line, text, blank_since_last, line_numbered):
                out.extend(current, text, line.no, _joiner(current.text, text))
            else:
                current = out.add_block("para", text, line.no)
        last_line = line
        blank_since_last = False
    return out.blocks


MIN_WRAPPED_CHARS = 30  # a list item that filled the PDF line; real headings are shorter


def _wraps_heading(block: Block | None, text: str, after_blank: bool) -> bool:
    """A 'heading' that ran on to the next line: really a wrapped list item (004's ② … A I導 / 入促進)."""
    if block is None or block.kind != "heading" or after_blank or block.heading_key.startswith(("md", "dotted")):
        return False
    if len(block.text) < MIN_WRAPPED_CHARS or block.text[-1] in "）)」】":
        return False
    return not _is_bullet(text) and not _is_table_row(text) and heading_of(text) is None


def _continues(block: Block, prev: Line | None, line: Line, text: str, after_blank: bool, numbered_doc: bool) -> bool:
    """Whether `text` continues the paragraph in `block` (a hard wrap) rather than starting one."""
    if block.kind != "para" or _is_bullet(text) or prev is None:
        return False
    if not after_blank:
        return True
    ends_sentence = block.text[-1] in _SENTENCE_END + "）)"
    if ends_sentence:
        return False
    if numbered_doc:
        return prev.numbered and line.numbered
    return len(block.text) >= 40


MAX_CAPTION_CHARS = 50
MAX_LABEL_CHARS = 8  # 「具体的取組例」: a label inside a slide, nested under the slide title


def promote_captions(blocks: list[Block]) -> None:
    """Slide titles: a short unpunctuated one-line paragraph introducing a table, heading or list.

    Slide decks (002) mark no headings, yet each slide's title is what its
    table or bullets are about, so it belongs in their section path.
    """
    for block, nxt in zip(blocks, blocks[1:]):
        text = block.text.strip()
        if block.kind != "para" or len(text) > MAX_CAPTION_CHARS or len(set(block.lines)) != 1:
            continue
        if text[-1] in _SENTENCE_END + "、，,：:" or _is_bullet(text):
            continue
        introduces = nxt.kind == "table" or (nxt.kind == "para" and _is_bullet(nxt.text))
        if introduces or (nxt.kind == "heading" and nxt.heading_key == "paren_title"):
            block.kind = "heading"
            block.heading_key = "label" if len(text) <= MAX_LABEL_CHARS else "caption"


# --- document ---------------------------------------------------------------------------

_NOT_A_TITLE = re.compile(r"^(資料\s*\S{0,3}|[○〇0-9０-９]+年.*日)$")


def _title(blocks: list[Block], fallback: str) -> str:
    for block in blocks[:8]:
        text = block.text.strip()
        if block.kind in ("heading", "para") and len(text) >= 6 and not _NOT_A_TITLE.match(text):
            return text[:80]
    return fallback


def clean_document(name: str, text: str, line_pages: tuple[int, ...] = ()) -> CleanDoc:
    """Clean one document's raw text into blocks with a line map and a title.

    `line_pages` (PDF) gives each source line's page; lines keep their numbers through cleaning,
    so every character's page follows from its line.
    """
    lines = [Line(i + 1, t.rstrip(" \u3000\r")) for i, t in enumerate(text.split("\n"))]
    numbered_side = strip_line_numbers(lines)
    line_numbered = bool(numbered_side)
    lines = drop_noise(lines)
    body, notes = extract_footnotes(lines, numbered_side == "end")
    blocks = build_blocks(body, line_numbered)
    if not line_numbered:  # in line-numbered PDFs unnumbered short lines are figure text, not titles
        promote_captions(blocks)
    terms = footnote_terms(body)
    for number, note in notes:
        block = Block("footnote", "", [], refers_to=terms.get(number, ""))
        for ln in note:
            part = clean_inline(ln.text).strip()
            if part:
                _BlockBuilder.extend(block, part, ln.no, _joiner(block.text, part) if block.text else "")
        if block.text and not _URL_ONLY.match(block.text):
            blocks.append(block)
    return CleanDoc(name=name, title=_title(blocks, name), blocks=blocks, line_pages=tuple(line_pages))
