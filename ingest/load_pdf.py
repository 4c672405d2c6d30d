"""PDF files: the text layer of every page (pypdfium2), with the page of each line.

The cleaner then repairs the text as it does for text files extracted from PDFs. What only
a PDF shows is dealt with here: page breaks (each line keeps its page, so a citation names
it) and running headers and footers, which repeat on most pages and would otherwise land in
the middle of sentences and in every chunk. There is no OCR: a scan without a text layer is
refused with that reason.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.load import MAX_DOCUMENT_BYTES, Loaded, LoadError, register
from rag.text import squash

# PDFium is not thread-safe and the app ingests and renders pages from several sessions' threads.
PDFIUM_LOCK = threading.RLock()

NO_TEXT_LAYER = "テキスト層がありません（スキャン画像のPDF）: OCR は行いません"
ENCRYPTED = "暗号化されたPDFです（開くにはパスワードが必要）"
TRUNCATED = "PDFが途中で切れています（末尾の %%EOF がありません）"
DAMAGED = "PDFが壊れていて読めません"
NOT_A_PDF = "PDFではありません（先頭に %PDF- がありません）"

_EDGE_LINES = 3  # headers and footers sit in the first or last few lines of a page
_MIN_SHARE = 0.6  # ... and repeat on at least this share of the pages
_COLUMN_GAP = 2.0  # a gap wider than this many times the font size separates table cells
_PARAGRAPH_GAP = 1.6  # a drop of this many usual line spacings is a blank line between paragraphs
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")
_DIGITS = re.compile(r"[0-9０-９]+")


def _open(data: bytes) -> pdfium.PdfDocument:
    if b"%PDF-" not in data[:1024]:
        raise LoadError(NOT_A_PDF)
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise LoadError(ENCRYPTED) from None
        if b"%%EOF" not in data[-2048:]:
            raise LoadError(TRUNCATED) from None
        raise LoadError(f"{DAMAGED}（{exc}）") from None


@dataclass
class PageText:
    lines: list[str]
    tops: list[float | None]  # the top of each line's first character (PDF points, up is larger)


def _page_text(textpage: pdfium.PdfTextPage) -> PageText:
    """The page's lines, with a tab where a space stands for a wide horizontal gap (a table's cell border).

    PDFium writes one space for any horizontal gap; the cleaner reads tab-separated lines as
    table rows. Line positions are kept so that paragraph gaps can become blank lines.
    """
    text = textpage.get_text_range()
    if len(text) != textpage.count_chars():  # offsets would not match the character boxes
        lines = text.replace("\r\n", "\n").split("\n")
        return PageText(lines, [None] * len(lines))
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch != " " or i == 0 or i + 1 >= len(chars) or chars[i - 1] in " \r\n" or chars[i + 1] in " \r\n":
            continue
        right = textpage.get_charbox(i - 1)[2]
        next_left = textpage.get_charbox(i + 1)[0]
        size = pdfium_c.FPDFText_GetFontSize(textpage.raw, i - 1)  # boxes of CID fonts can have no height
        if next_left - right > _COLUMN_GAP * max(size, 1.0):
            chars[i] = "\t"
    lines, tops, start = [], [], 0
    for end in [i for i, ch in enumerate(chars) if ch == "\n"] + [len(chars)]:
        first = next((j for j in range(start, end) if not chars[j].isspace()), None)
        lines.append("".join(chars[start:end]).rstrip("\r"))
        tops.append(textpage.get_charbox(first, loose=True)[3] if first is not None else None)
        start = end + 1
    return PageText(lines, tops)


def _drops(page: PageText) -> list[float]:
    return [a - b for a, b in zip(page.tops, page.tops[1:]) if a is not None and b is not None and a - b > 1.0]


def line_spacing(pages: list[PageText]) -> float | None:
    """The document's usual line spacing: the smallest drop between lines that recurs.

    Taken over the whole document, since on some pages paragraph gaps outnumber plain line breaks.
    """
    counts = Counter(round(d * 2) / 2 for page in pages for d in _drops(page))
    recurring = [d for d, count in counts.items() if count >= 2]
    return min(recurring) if recurring else None


def with_paragraph_gaps(page: PageText, spacing: float | None) -> str:
    """The page text with a blank line wherever the drop to the next line is over _PARAGRAPH_GAP spacings.

    PDFium writes nothing for vertical space; a blank line ends a paragraph or footnote for the
    cleaner as it does in a text file.
    """
    out = page.lines[:1]
    for i in range(1, len(page.lines)):
        above, here = page.tops[i - 1], page.tops[i]
        if spacing and above is not None and here is not None and above - here > _PARAGRAPH_GAP * spacing:
            out.append("")
        out.append(page.lines[i])
    return "\n".join(out)


def page_texts(data: bytes) -> list[PageText]:
    """The text layer of each page, in page order."""
    with PDFIUM_LOCK:
        pdf = _open(data)
        try:
            texts = []
            for index in range(len(pdf)):
                page = pdf[index]
                textpage = page.get_textpage()
                texts.append(_page_text(textpage))
                textpage.close()
                page.close()
        except pdfium.PdfiumError as exc:
            raise LoadError(f"{DAMAGED}（{exc}）") from None
        finally:
            pdf.close()
    return texts


def _page_lines(text: str) -> list[str]:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [line.rstrip() for line in text.split("\n")]


_MAX_NUMBERED_CHARS = 20  # a footer with a page number is short; a body line that differs by a number is not


def _edge_keys(lines: list[str]) -> set[str]:
    """What a header or footer line on this page would look like on any page."""
    body = [line for line in lines if line.strip()]
    return {_running_key(line) for line in body[:_EDGE_LINES] + body[-_EDGE_LINES:]}


def _running_key(line: str) -> str:
    """The line without spaces; a short line also with its numbers masked (「- 3 -」, 「資料1 3/12」)."""
    key = squash(line)
    return _DIGITS.sub("#", key) if len(key) <= _MAX_NUMBERED_CHARS else key


def drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Remove header and footer lines: an edge line that, digits aside, recurs on most pages."""
    if len(pages) < 2:
        return pages
    counts = Counter(key for lines in pages for key in _edge_keys(lines))
    needed = max(2, math.ceil(_MIN_SHARE * len(pages)))
    running = {key for key, count in counts.items() if count >= needed and key}
    out = []
    for lines in pages:
        edges = _edge_keys(lines)
        out.append([line for line in lines if not (_running_key(line) in running and _running_key(line) in edges)])
    return out


def pdf_text(texts: list[str]) -> Loaded:
    """One text for the page texts, a blank line between pages, with the page of every line."""
    pages = drop_running_lines([_page_lines(t) for t in texts])
    lines: list[str] = []
    line_pages: list[int] = []
    for number, page in enumerate(pages, 1):
        while page and not page[0].strip():  # the gap under a removed header
            page = page[1:]
        while page and not page[-1].strip():  # ... and above a removed footer
            page = page[:-1]
        if lines:
            lines.append("")  # ends a footnote or paragraph at the page break, as a blank line would
            line_pages.append(number - 1)
        lines += page
        line_pages += [number] * len(page)
    return Loaded("\n".join(lines), "pdf", tuple(line_pages))


@register(".pdf", max_bytes=MAX_DOCUMENT_BYTES)
def load_pdf(data: bytes) -> Loaded:
    pages = page_texts(data)
    if not pages:
        raise LoadError("PDFにページがありません")
    if not any(line.strip() for page in pages for line in page.lines):
        raise LoadError(NO_TEXT_LAYER)
    spacing = line_spacing(pages)
    return pdf_text([with_paragraph_gaps(page, spacing) for page in pages])
