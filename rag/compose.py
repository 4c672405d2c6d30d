"""Compose the offline answer: the chosen candidate sentences, each cited; the answer and citation types.

No LLM: every sentence of the answer is copied from a passage, so it is
grounded by construction; which sentences, and whether any, is the fitted
decision's (`rag.decide`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from llama_index.core.schema import NodeWithScore

from rag.candidates import Candidate
from rag.ground import SentenceCheck
from rag.store import lines_of_span
from rag.text import normalize, sentence_spans

NOT_FOUND = "資料には記載が見つかりませんでした。"
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 360
FOLLOWER_SHARE = 0.5  # a further sentence must be this likely relative to the best one


@dataclass
class Citation:
    """One numbered source: the passage and the exact evidence span inside it."""

    n: int
    doc: str
    title: str
    section: str
    lines: tuple[int, int]  # source lines of the evidence
    text: str  # the whole passage
    evidence_start: int  # offsets of the evidence in `text`
    evidence_end: int
    score: float
    chunk_id: str
    page_start: int | None = None  # 1-based PDF pages of the evidence; None when the document has no pages
    page_end: int | None = None

    @property
    def evidence(self) -> str:
        return self.text[self.evidence_start : self.evidence_end]

    def to_dict(self) -> dict:
        return dict(asdict(self), evidence=self.evidence, lines=list(self.lines))


@dataclass
class Answer:
    question: str
    query: str  # the standalone query actually searched (after follow-up resolution)
    text: str
    citations: list[Citation] = field(default_factory=list)
    related: list[Citation] = field(default_factory=list)  # closest passages when abstaining
    passages: list[Citation] = field(default_factory=list)  # everything retrieved, ranked
    abstained: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    generator: str = "extractive"  # what wrote `text`
    notice: str = ""  # why the requested LLM did not write it (the extractive fallback answered)
    checks: list[SentenceCheck] = field(default_factory=list)  # grounding of each answer sentence

    @property
    def unsupported(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.supported]

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("citations", "related", "passages"):
            out[key] = [cite.to_dict() for cite in getattr(self, key)]
        return out


def citation_for(hit: NodeWithScore, n: int, span: tuple[int, int] | None = None) -> Citation:
    """A citation of `hit`; the evidence is `span` of its text, or the whole passage."""
    node = hit.node
    text = node.get_content()
    start, end = span or (0, len(text))
    meta = node.metadata
    runs = meta.get("line_runs") or [[0, meta.get("line_start", 0)]]
    pages = lines_of_span(meta["page_runs"], start, end) if meta.get("page_runs") else (None, None)
    return Citation(
        n=n,
        doc=meta["doc"],
        title=meta.get("title", meta["doc"]),
        section=meta.get("section", ""),
        lines=lines_of_span(runs, start, end),
        text=text,
        evidence_start=start,
        evidence_end=end,
        score=float(hit.score or 0.0),
        chunk_id=node.node_id,
        page_start=pages[0],
        page_end=pages[1],
    )


def compose(cands: list[Candidate], probabilities: np.ndarray, floor: float) -> tuple[str, list[Citation]]:
    """(answer text with [n] markers, citations) from the likeliest candidates; ("", []) when there are none."""
    return cited_text(choose(cands, probabilities, floor))


def choose(cands: list[Candidate], probabilities: np.ndarray, floor: float) -> list[Candidate]:
    """The sentences of the answer: the likeliest candidate, and others nearly as likely.

    Whether to answer at all is the caller's decision (`Decider.answers`); the
    best candidate answers, and others join it when nearly as likely
    (FOLLOWER_SHARE of the best) and at least `floor`, up to MAX_SENTENCES and
    MAX_ANSWER_CHARS. No words are quoted twice: a span sharing characters with a
    chosen one (a label extended over it, two label-extended table rows) merges
    into it as their union.
    """
    order = np.argsort(-probabilities, kind="stable")
    if not len(order):
        return []
    best = float(probabilities[order[0]])
    chosen: list[Candidate] = [cands[order[0]]]
    for i in order[1:]:
        cand, p = cands[i], float(probabilities[i])
        if len(chosen) >= MAX_SENTENCES or p < max(floor, FOLLOWER_SHARE * best):
            break
        shared = next((c for c in chosen if _overlaps(c, cand)), None)
        if shared is not None:  # a label-extended span around it, or a neighbouring table row: quote the union once
            union = _union(shared, cand)
            if sum(len(c.text) for c in chosen if c is not shared) + len(union.text) <= MAX_ANSWER_CHARS:
                chosen[chosen.index(shared)] = union
            continue
        if said(cand, chosen) or sum(len(c.text) for c in chosen) + len(cand.text) > MAX_ANSWER_CHARS:
            continue
        chosen.append(cand)
    return chosen


def said(cand: Candidate, chosen: list[Candidate]) -> bool:
    """`cand` repeats a chosen sentence or shares characters with a chosen span (two label-extended spans
    over neighbouring table rows overlap): an answer never quotes the same words twice."""
    return any(_overlaps(cand, c) for c in chosen) or normalize(cand.text) in {normalize(c.text) for c in chosen}


def cited_text(chosen: list[Candidate]) -> tuple[str, list[Citation]]:
    """The chosen sentences in reading order (see `reading_order`), each with its [n]."""
    return cited_in_order(reading_order(chosen))


def reading_order(chosen: list[Candidate]) -> list[Candidate]:
    """Sentences chosen best first, in reading order: the best sentence's passage leads, then each other passage
    in the order its best sentence was chosen; within a passage, document order. So [1] is what most likely
    answers, not merely the passage retrieval ranked first."""
    first: dict[str, int] = {}
    for i, cand in enumerate(chosen):
        first.setdefault(cand.node.node_id, i)
    return sorted(chosen, key=lambda c: (first[c.node.node_id], c.span[0]))


def cited_in_order(chosen: list[Candidate]) -> tuple[str, list[Citation]]:
    """The chosen sentences as given, each with its [n]."""
    numbers, citations = cite([(c.hit, c.span) for c in chosen])
    parts: list[str] = []
    for cand, n in zip(chosen, numbers):
        # every sentence carries its marker: a label-extended candidate holds several
        text = " ".join(cand.text.split())
        pieces = [text[s:e].strip() for s, e in sentence_spans(text)] or [text]
        parts.append("".join(f"{piece}[{n}]" for piece in pieces))
    return "".join(parts), citations


def cite(parts: list[tuple[NodeWithScore, tuple[int, int]]]) -> tuple[list[int], list[Citation]]:
    """Citation number of each (passage, span) part, and one citation per passage spanning its parts.

    Passages are numbered in order of first appearance.
    """
    spans: dict[str, tuple[int, int]] = {}
    hit_of: dict[str, NodeWithScore] = {}
    for hit, (start, end) in parts:
        node_id = hit.node.node_id
        first, last = spans.get(node_id, (start, end))
        spans[node_id] = (min(first, start), max(last, end))
        hit_of.setdefault(node_id, hit)
    number_of = {node_id: n for n, node_id in enumerate(spans, 1)}
    citations = [citation_for(hit_of[node_id], n, spans[node_id]) for node_id, n in number_of.items()]
    return [number_of[hit.node.node_id] for hit, _ in parts], citations


def _overlaps(a: Candidate, b: Candidate) -> bool:
    """Two spans of the same passage share at least one character."""
    return a.node.node_id == b.node.node_id and a.span[0] < b.span[1] and b.span[0] < a.span[1]


def _union(kept: Candidate, other: Candidate) -> Candidate:
    """One candidate spanning two overlapping spans of the same passage (the wider one when one holds the other)."""
    if _inside(kept, other):
        return other
    if _inside(other, kept):
        return kept
    start, end = min(kept.span[0], other.span[0]), max(kept.span[1], other.span[1])
    return replace(kept, span=(start, end), text=kept.node.get_content()[start:end])


def _inside(inner: Candidate, outer: Candidate) -> bool:
    """`inner` is a span of the same passage lying within `outer` (a sentence and its label-extended span)."""
    same = inner.node.node_id == outer.node.node_id
    return same and outer.span[0] <= inner.span[0] and inner.span[1] <= outer.span[1]


def idf_from_bm25(bm25) -> dict[str, float]:
    """Term weights from the BM25 index's document frequencies (no re-tokenizing at load)."""
    indptr = bm25.scores["indptr"]
    n_docs = max(int(bm25.scores.get("num_docs", 0)), 1)
    out = {}
    for term, col in bm25.vocab_dict.items():
        if col + 1 >= len(indptr):  # bm25s' placeholder for empty documents has no column
            continue
        df = int(indptr[col + 1] - indptr[col])
        out[term] = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return out
