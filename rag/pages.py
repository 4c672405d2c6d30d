"""The PDF page a citation points to: its label (「p. 12」) and the page as an image with the evidence marked.

The evidence is cleaned text (hard wraps joined, line numbers and footnote marks removed), so it is
found on the page piece by piece: the longest run of the evidence that the page's text layer holds
(spaces aside), then the longest run of what is left, and so on. Each found character's box is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw

from ingest.load_pdf import PDFIUM_LOCK

MIN_PIECE = 4  # shorter runs match by chance anywhere on a page
HIGHLIGHT = (255, 190, 0, 110)  # translucent orange, like the evidence in the source card


def page_label(first: int | None, last: int | None) -> str:
    """「p. 12」 or 「pp. 12–13」; empty for a document without pages."""
    if first is None:
        return ""
    if last is None or last == first:
        return f"p. {first}"
    return f"pp. {first}–{last}"


@dataclass
class PageImage:
    image: Image.Image
    page: int
    marked: int  # evidence characters found and marked on this page


def _dense(text: str) -> tuple[str, list[int]]:
    """`text` without whitespace, and the index in `text` of each kept character."""
    kept = [(i, ch) for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(ch for _, ch in kept), [i for i, _ in kept]


def evidence_chars(page_text: str, evidence: str) -> list[int]:
    """Indices of page_text characters that spell out the evidence, found greedily in pieces."""
    haystack, where = _dense(page_text)
    needle, _ = _dense(evidence)
    found: list[int] = []
    pos = 0
    while pos < len(needle):
        hit, length = -1, 0
        low, high = MIN_PIECE, len(needle) - pos
        while low <= high:  # the longest piece starting at pos that the page holds (binary search on length)
            mid = (low + high) // 2
            at = haystack.find(needle[pos : pos + mid])
            if at >= 0:
                hit, length, low = at, mid, mid + 1
            else:
                high = mid - 1
        if hit < 0:
            pos += 1
            continue
        found += where[hit : hit + length]
        pos += length
    return found


def render_evidence(path: Path, page: int, evidence: str, width: int = 1000) -> PageImage:
    """Page `page` (1-based) of the PDF at `path`, `width` pixels wide, with the evidence's characters marked."""
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(path)
        try:
            if not 1 <= page <= len(pdf):
                raise ValueError(f"{path.name} has {len(pdf)} pages, not page {page}")
            pdf_page = pdf[page - 1]
            page_width, page_height = pdf_page.get_size()
            scale = width / page_width
            image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
            textpage = pdf_page.get_textpage()
            chars = evidence_chars(textpage.get_text_range(), evidence)
            boxes = [textpage.get_charbox(i, loose=True) for i in chars]
            textpage.close()
            pdf_page.close()
        finally:
            pdf.close()
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for left, bottom, right, top in boxes:
        draw.rectangle(
            (left * scale, (page_height - top) * scale, right * scale, (page_height - bottom) * scale), fill=HIGHLIGHT
        )
    return PageImage(Image.alpha_composite(image, overlay).convert("RGB"), page, len(chars))
