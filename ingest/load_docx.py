"""Word (.docx) files: paragraphs in order, headings from paragraph styles, tables as rows.

Headings come out as Markdown `#` lines at their style's level, because the style says what
is a heading more reliably than the text does; the cleaner then builds the section path
from them. Table rows come out tab-separated, the form the cleaner reads as a table.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from ingest.load import MAX_DOCUMENT_BYTES, Loaded, LoadError, register

NOT_A_DOCX = "Word (.docx) 文書ではありません（ZIP 形式ではありません）"
ENCRYPTED_OR_DOC = "暗号化されたWord文書か、旧形式の .doc です（.docx で保存し直してください）"
DAMAGED = "Word文書が壊れていて読めません"

_HEADING_STYLE = re.compile(r"^(?:heading|見出し)\s*([1-9])$", re.IGNORECASE)
_TITLE_STYLES = {"title", "表題"}  # the document title heads the section path of everything under it
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted .docx and legacy .doc files
_SPACES = re.compile(r"\s+")


def heading_level(paragraph: Paragraph) -> int:
    """1-6 for a paragraph whose style (or the style it is based on) is a heading or title style, else 0."""
    style = paragraph.style
    while style is not None:
        name = style.name or ""
        if name.lower() in _TITLE_STYLES:
            return 1
        m = _HEADING_STYLE.match(name)
        if m:
            return min(int(m.group(1)), 6)
        style = style.base_style
    return 0


def _cell_text(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def table_rows(table: Table) -> list[str]:
    """Each row as tab-separated cell texts; a merged cell counts once."""
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(_cell_text(cell.text))
        if any(cells):
            rows.append("\t".join(c for c in cells if c))
    return rows


def docx_lines(document) -> list[str]:
    """The document body as lines: a blank line between paragraphs, none between table rows."""
    lines: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = table_rows(item)
            if rows:
                lines += [*rows, ""]
            continue
        text = item.text.strip()
        if not text:
            continue
        level = heading_level(item)
        lines += [f"{'#' * level} {_cell_text(text)}" if level else text, ""]
    return lines


@register(".docx", max_bytes=MAX_DOCUMENT_BYTES)
def load_docx(data: bytes) -> Loaded:
    if data.startswith(_OLE_SIGNATURE):
        raise LoadError(ENCRYPTED_OR_DOC)
    if not data.startswith(b"PK"):
        raise LoadError(NOT_A_DOCX)
    try:
        document = docx.Document(io.BytesIO(data))
        lines = docx_lines(document)
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, etree.LxmlError) as exc:
        raise LoadError(f"{DAMAGED}（{type(exc).__name__}: {exc}）") from None
    return Loaded("\n".join(lines).replace("\r", ""), "docx")
