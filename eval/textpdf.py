"""A bundled text document as the PDF it was extracted from, for PDF ingest speed and parity figures.

The bundled texts are PDF extractions that kept each page's line numbers, so a page break goes
where the numbering restarts (texts without line numbers get a break every `LINES_PER_PAGE`
lines, and a page never holds more lines than fit at the usual spacing: figure pages carry no
line numbers). Each line is drawn as it is (a tab-separated row as cells far apart, a blank line as
vertical space) with reportlab's built-in Japanese CID font.
"""

from __future__ import annotations

import re
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from ingest.clean import Line, strip_line_numbers

EMBEDDABLE_FONTS = (
    Path("/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-mincho.ttf"),
)
FONT_SIZE = 10.5
MARGIN = 50
LINES_PER_PAGE = 40
LEADING = 13.0  # the same line spacing on every page, as in a real document
MAX_LINES = int((A4[1] - 2 * MARGIN) // LEADING)
_NUMBER = re.compile(r"\d{1,2}")


def _register_font() -> tuple[str, bool]:
    """(font name, embedded?): a TrueType Japanese font to embed if one is installed, else the CID font."""
    for path in EMBEDDABLE_FONTS:
        if path.exists():
            pdfmetrics.registerFont(TTFont("IPAMincho", str(path)))
            return "IPAMincho", True
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    return "HeiseiMin-W3", False


FONT, FONT_EMBEDDED = _register_font()


def page_breaks(text: str) -> list[list[str]]:
    """The text's lines split into pages where the page line numbering starts again."""
    raw = text.split("\n")
    lines = [Line(i + 1, t.rstrip(" \u3000\r")) for i, t in enumerate(raw)]
    side = strip_line_numbers(lines)
    pages: list[list[str]] = [[]]
    last = 0
    for original, line in zip(raw, lines):
        number = 0
        if side and line.numbered:
            rest = original.rstrip(" \u3000\r")
            cut = rest[len(line.text) :] if side == "end" else rest[: len(rest) - len(line.text)]
            found = _NUMBER.search(cut)
            number = int(found.group()) if found else 0
        restarts = bool(number) and number <= last and pages[-1]
        full = len(pages[-1]) >= (MAX_LINES if side else LINES_PER_PAGE)
        if restarts or full:
            pages.append([])
        if number:
            last = number
        pages[-1].append(original.rstrip("\r"))
    return pages


def _draw_line(pdf: canvas.Canvas, line: str, y: float, width: float) -> None:
    cells = [c for c in line.split("\t")]
    if len(cells) == 1:
        size = min(FONT_SIZE, FONT_SIZE * width / max(pdfmetrics.stringWidth(line, FONT, FONT_SIZE), 1))
        pdf.setFont(FONT, size)
        pdf.drawString(MARGIN, y, line)
        return
    x = MARGIN  # table cells: far enough apart to read as separate cells
    for cell in cells:
        size = min(FONT_SIZE, FONT_SIZE * width / 2 / max(pdfmetrics.stringWidth(cell, FONT, FONT_SIZE), 1))
        pdf.setFont(FONT, size)
        pdf.drawString(x, y, cell)
        x += pdfmetrics.stringWidth(cell, FONT, size) + 3 * FONT_SIZE


def text_to_pdf(text: str, path: Path) -> int:
    """Write `text` as a PDF at `path`; returns its page count."""
    page_width, page_height = A4
    width = page_width - 2 * MARGIN
    pages = page_breaks(text)
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=True)
    for lines in pages:
        y = page_height - MARGIN
        for line in lines:
            if line.strip():
                _draw_line(pdf, line, y, width)
            y -= LEADING
        pdf.showPage()
    pdf.save()
    return len(pages)
