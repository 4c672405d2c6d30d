"""Split a cleaned document into chunks along its structure.

Chunks never cross a section boundary once they hold enough text, and never
cut a sentence (。！？), a list item or a table row. Each chunk is a
llama-index `TextNode` carrying the metadata a citation needs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from ingest.clean import Block, CleanDoc
from rag.text import sentence_spans

SPLITTER_VERSION = "split-v2"
DEFAULT_MAX_CHARS = 400
DEFAULT_MIN_CHARS = 120
FOOTNOTE_SECTION = "脚注"

# metadata keys shown to the embedder / LLM besides the text (the rest are bookkeeping)
CONTEXT_KEYS = ("title", "section")
_BOOKKEEPING_KEYS = [
    "doc", "line_start", "line_end", "char_start", "char_end", "line_runs", "content_hash", "defines",
    "page_start", "page_end", "page_runs",
]  # fmt: skip

_SOFT_BREAK = re.compile(r"[、，,；;]")


@dataclass
class _Unit:
    start: int  # offsets into CleanDoc.text
    end: int
    section: tuple[str, ...]
    is_heading: bool


def _sentences(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Sentence spans of a paragraph; a sentence longer than max_chars is cut at commas."""
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        while end - start > max_chars:
            window = text[start : start + max_chars]
            cuts = [c.end() for c in _SOFT_BREAK.finditer(window)]
            cut = start + (cuts[-1] if cuts and cuts[-1] > max_chars // 3 else max_chars)
            spans.append((start, cut))
            start = cut
        if text[start:end].strip():
            spans.append((start, end))
    return spans


def _block_units(block: Block, offset: int, section: tuple[str, ...], max_chars: int) -> list[_Unit]:
    if block.kind == "heading":
        return [_Unit(offset, offset + len(block.text), section, True)]
    if block.kind == "table":
        units, pos = [], 0
        for row in block.text.split("\n"):
            units.append(_Unit(offset + pos, offset + pos + len(row), section, False))
            pos += len(row) + 1
        return units
    return [_Unit(offset + s, offset + e, section, False) for s, e in _sentences(block.text, max_chars)]


class _SectionPath:
    """Heading stack; a heading's depth is inferred from which heading styles enclose it."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, int, str]] = []

    def push(self, block: Block) -> tuple[str, ...]:
        key, rank = block.heading_key, block.heading_rank
        for i, (k, r, _) in enumerate(self.stack):
            same_style = k == key
            # explicit-level styles (md3, dotted2 ...) close every heading of their family at the same depth or deeper
            same_family = k.rstrip("0123456789") == key.rstrip("0123456789")
            deeper_level = bool(rank) and bool(r) and same_family and r >= rank
            if same_style or deeper_level:
                del self.stack[i:]
                break
        self.stack.append((key, rank, block.text))
        return self.path()

    def path(self) -> tuple[str, ...]:
        return tuple(title for _, _, title in self.stack)


def _units(doc: CleanDoc, max_chars: int) -> tuple[list[_Unit], list[int]]:
    """All units of the document plus a per-character source-line map of doc.text."""
    units: list[_Unit] = []
    line_map: list[int] = []
    sections = _SectionPath()
    offset = 0
    for i, block in enumerate(doc.blocks):
        if i:
            line_map += [line_map[-1] if line_map else 1] * 2  # the "\n\n" between blocks
            offset += 2
        if block.kind == "heading":
            section = sections.push(block)
        elif block.kind == "footnote":  # titled by the term it explains: each note is found by that word
            section = (FOOTNOTE_SECTION, block.refers_to) if block.refers_to else (FOOTNOTE_SECTION,)
        else:
            section = sections.path()
        units += _block_units(block, offset, section, max_chars)
        line_map += block.lines
        offset += len(block.text)
    return units, line_map


def _pack(units: list[_Unit], max_chars: int, min_chars: int) -> list[list[_Unit]]:
    """Greedy packing: a heading or a new section starts a chunk once the current one is big enough."""
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        size = unit.end - current[0].start if current else 0
        body = [u for u in current if not u.is_heading]
        new_section = bool(body) and unit.section != body[-1].section
        if current and (
            size > max_chars
            or ((unit.is_heading or new_section) and size >= min_chars)
            or (new_section and body[-1].section[:1] == (FOOTNOTE_SECTION,))
        ):
            chunks.append(current)
            current = []
        current.append(unit)
    if current:
        chunks.append(current)
    return chunks


def _line_runs(lines: list[int]) -> list[list[int]]:
    """[[offset, line], ...]: where in the chunk text each new source line begins."""
    runs: list[list[int]] = []
    for offset, line in enumerate(lines):
        if not runs or runs[-1][1] != line:
            runs.append([offset, line])
    return runs


def _pages(doc: CleanDoc, lines: list[int]) -> dict:
    """Page metadata of a chunk: first and last page, and `page_runs` like `line_runs` for evidence spans."""
    runs = [[offset, doc.page_of(line)] for offset, line in _line_runs(lines)]
    page_runs = [run for i, run in enumerate(runs) if i == 0 or run[1] != runs[i - 1][1]]
    pages = [page for _, page in page_runs]
    return {"page_start": min(pages), "page_end": max(pages), "page_runs": page_runs}


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def split_document(
    doc: CleanDoc, max_chars: int = DEFAULT_MAX_CHARS, min_chars: int = DEFAULT_MIN_CHARS
) -> list[TextNode]:
    """Chunk one cleaned document into TextNodes linked to their neighbours."""
    full_text = doc.text
    units, line_map = _units(doc, max_chars)
    nodes: list[TextNode] = []
    for group in _pack(units, max_chars, min_chars):
        start, end = group[0].start, group[-1].end
        text = full_text[start:end].strip()
        if not text:
            continue
        start += len(full_text[start:end]) - len(full_text[start:end].lstrip())
        body = [u for u in group if not u.is_heading] or group
        node_id = f"{doc.name}#{len(nodes):04d}"
        node = TextNode(
            id_=node_id,
            text=text,
            metadata={
                "doc": doc.name,
                "title": doc.title,
                "section": " > ".join(body[0].section),
                "line_start": line_map[start],
                "line_end": line_map[end - 1],
                "char_start": start,
                "char_end": start + len(text),
                "line_runs": _line_runs(line_map[start : start + len(text)]),
                # a footnote explains the body term its mark follows; the composer counts it as said
                "defines": "".join(body[0].section[1:2]) if body[0].section[:1] == (FOOTNOTE_SECTION,) else "",
            },
            excluded_embed_metadata_keys=list(_BOOKKEEPING_KEYS),
            excluded_llm_metadata_keys=list(_BOOKKEEPING_KEYS),
            metadata_template="{value}",
            text_template="{metadata_str}\n\n{content}",
        )
        if doc.line_pages:
            node.metadata.update(_pages(doc, line_map[start : start + len(text)]))
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc.name)
        if nodes:
            node.relationships[NodeRelationship.PREVIOUS] = RelatedNodeInfo(node_id=nodes[-1].node_id)
            nodes[-1].relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id=node_id)
        nodes.append(node)
    return nodes


def search_text(node: TextNode) -> str:
    """What the embedder and BM25 see: title and section path, then the chunk text."""
    from llama_index.core.schema import MetadataMode

    from rag.text import normalize

    return normalize(node.get_content(metadata_mode=MetadataMode.EMBED))
