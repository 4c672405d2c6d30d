"""Candidate answer sentences: every sentence of the top passages, with what surrounds it.

The decision (`rag.decide`) scores each candidate; this module only says what
the candidates are. Two layout facts shape them: a heading or list label
answers only together with what it introduces (so it is extended over the
next sentences), and a chunk that ends with the heading of the next chunk is
followed by that chunk (neighbour expansion), its closing heading not being
an answer by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.schema import NodeWithScore, TextNode

from rag.retrieve import Signals
from rag.text import normalize, sentence_spans

PASSAGES = 5  # top passages whose sentences compete
MAX_LABEL_CHARS = 60
LABEL_EXTENSION_CHARS = 80


@dataclass
class Candidate:
    """One sentence (or label plus what it introduces) of a retrieved passage."""

    hit: NodeWithScore
    rank: int  # rank of its passage among the retrieved ones (a neighbour shares its predecessor's)
    signals: Signals
    span: tuple[int, int]  # offsets in the passage text
    text: str
    index: int  # sentence position in the passage
    sentences: int  # sentences in the passage
    is_label: bool
    is_neighbour: bool
    headings: str  # section path and the labels above it in the passage

    @property
    def node(self) -> TextNode:
        return self.hit.node


def _is_label(sentence: str, is_last: bool) -> bool:
    """A heading or list label inside a passage: short, unpunctuated, followed by more text."""
    plain = sentence.strip()
    return not is_last and len(plain) <= MAX_LABEL_CHARS and "\t" not in plain and plain[-1:] not in "。！？!?"


def _extend_label(spans: list[tuple[int, int]], index: int, min_chars: int) -> int:
    """End offset of a label plus the sentences after it, up to about min_chars."""
    start, end = spans[index]
    for _, next_end in spans[index + 1 : index + 3]:
        if end - start >= min_chars:
            break
        end = next_end
    return end


def section_path(node: TextNode) -> list[str]:
    """The headings above `node`, outermost first, in search form."""
    section = node.metadata.get("section", "")
    return [part.strip() for part in normalize(section).split(" > ")] if section else []


def ends_with_heading_of(node: TextNode, following: TextNode) -> bool:
    """`node` closes with a heading of `following`'s section path (the chunk border fell under a heading)."""
    spans = sentence_spans(node.get_content())
    if not spans:
        return False
    last = normalize(node.get_content()[spans[-1][0] : spans[-1][1]])
    return bool(last) and last in section_path(following)


def candidates(
    hits: list[NodeWithScore],
    signals: list[Signals],
    next_node: Callable[[TextNode], TextNode | None],
    passages: int = PASSAGES,
) -> list[Candidate]:
    """The sentences of the top `passages` hits; a hit ending in its next chunk's heading is followed by that chunk."""
    pool: list[tuple[NodeWithScore, int, Signals, bool]] = []
    present = {h.node.node_id for h in hits[:passages]}
    for rank, (hit, signal) in enumerate(zip(hits[:passages], signals[:passages])):
        pool.append((hit, rank, signal, False))
        following = next_node(hit.node)
        if following is not None and following.node_id not in present and ends_with_heading_of(hit.node, following):
            pool.append((NodeWithScore(node=following, score=hit.score), rank, signal, True))
            present.add(following.node_id)
    in_pool = {hit.node.node_id: hit.node for hit, _, _, _ in pool}
    out: list[Candidate] = []
    for hit, rank, signal, is_neighbour in pool:
        after = in_pool.get(hit.node.next_node.node_id) if hit.node.next_node else None
        continued = after is not None and ends_with_heading_of(hit.node, after)
        text = hit.node.get_content()
        labels: list[str] = [hit.node.metadata.get("section", "")]
        spans = sentence_spans(text)
        for index, (start, end) in enumerate(spans):
            is_last = index == len(spans) - 1
            if is_last and continued:
                continue  # a closing heading: its content (the next chunk) is the answer
            is_label = _is_label(text[start:end], is_last)
            if is_label:
                end = _extend_label(spans, index, LABEL_EXTENSION_CHARS)
            out.append(
                Candidate(
                    hit,
                    rank,
                    signal,
                    (start, end),
                    text[start:end],
                    index,
                    len(spans),
                    is_label,
                    is_neighbour,
                    " ".join(labels),
                )
            )
            if is_label:
                labels.append(text[spans[index][0] : spans[index][1]])
    return out
