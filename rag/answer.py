"""The offline answer: pick the retrieved sentences that answer the question, cite each one.

No LLM: every sentence of the answer is copied from a passage, so it is
grounded by construction; what can go wrong is choosing the wrong sentence,
which the question-type boosts and term weighting below try to avoid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from llama_index.core.schema import NodeWithScore, TextNode

from rag.asked import AskedFor
from rag.ground import SentenceCheck
from rag.store import lines_of_span
from rag.text import Tokenizer, normalize, sentence_spans, squash

NOT_FOUND = "資料には記載が見つかりませんでした。"
SentenceSimilarity = Callable[[TextNode, int, int], float]  # (node, start, end) -> cosine to the question

_DEFINITION = re.compile(r"とは|をいう|という|を指す|と定義|を目的と|を意味する")
COUNTER_BONUS = 0.3  # 「何社」 asked and 「9社」 in the sentence: the exact kind of number
# Cross-language questions: cosine similarity mapped onto the term score's 0..1 range.
DENSE_FLOOR = 0.75
DENSE_SCALE = 0.15
ROW_HEADER_BONUS = 0.5  # slide tables: the row headed by what the question asks about
DEFINITION_SUBJECT_BONUS = 0.2
MAX_SENTENCES = 3
FOOTNOTE_DEFINITION_BONUS = 0.3  # a footnote defining the asked term outranks passing mentions of it
PASSAGES = 5  # top passages whose sentences compete
RANK_PRIOR = 0.3  # bonus for sentences of higher-ranked passages (0.15 → 0.3: keyword acc. +0.03 on both halves)
CONTEXT_WEIGHT = 0.5  # weight of question terms found only in the headings above a sentence
MAX_LABEL_CHARS = 60
LABEL_EXTENSION_CHARS = 80
MAX_ANSWER_CHARS = 360
SECOND_SENTENCE_RATIO = 0.6  # a further sentence must score this close to the best one (0.75 dropped answers)


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


@dataclass
class _Candidate:
    hit_rank: int
    span: tuple[int, int]
    text: str
    score: float
    terms: set[str]


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


class ExtractiveComposer:
    """Scores every sentence of the top passages against the question; cites the best ones.

    A sentence is credited for the question terms it contains, and at half
    weight for those in the headings above it (section path and labels earlier
    in the passage), so 「道路交通法：…」 under 「自動運転関係の法令」 answers a
    question about 自動運転. Labels themselves are not answers unless they hold
    the date or number the question asks for.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        idf: dict[str, float],
        passages: int = PASSAGES,
        next_node: Callable[[TextNode], TextNode | None] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.idf = idf
        self.passages = passages
        self.next_node = next_node or (lambda node: None)
        self._unknown_weight = max(idf.values(), default=1.0)

    def pool(self, hits: list[NodeWithScore]) -> list[NodeWithScore]:
        """The top passages, plus the next chunk of any that ends in a heading (neighbour expansion).

        A chunk can end with a heading such as 「4) 自動運転関係の法令」 whose
        content opens the next chunk; without that chunk the heading is cited
        with nothing under it.
        """
        top = hits[: self.passages]
        present = {h.node.node_id for h in top}
        pool = []
        for hit in top:
            pool.append(hit)
            following = self.next_node(hit.node)
            if following is None or following.node_id in present:
                continue
            if _ends_with_heading_of(hit.node, following):
                pool.append(NodeWithScore(node=following, score=hit.score))  # read right after its heading
                present.add(following.node_id)
        return pool

    def _bonus(
        self, asked: AskedFor, sentence: str, plain: str, has_value: bool, defines: bool, q_terms: set[str]
    ) -> float:
        """What the sentence holds of the kind of answer the question asks for."""
        bonus = 0.0
        if has_value:
            bonus += 0.25 if asked.date else 0.2
        if asked.counter and asked.counter.search(plain):
            bonus += COUNTER_BONUS  # 「9社」 for 「何社」
        if asked.definition and _DEFINITION.search(plain):
            bonus += 0.2
        if asked.definition and defines:
            bonus += FOOTNOTE_DEFINITION_BONUS  # the footnote that defines the asked term
        if asked.subject and asked.subject.search(squash(sentence)):
            bonus += DEFINITION_SUBJECT_BONUS  # 「AI 開発者は、…を行う者とする。」 for 「AI開発者とは？」
        if "\t" in sentence and self._row_header_asked(sentence, q_terms):
            bonus += ROW_HEADER_BONUS
        return bonus

    def _row_header_asked(self, row: str, q_terms: set[str]) -> bool:
        """A table row whose first cell (「目的」「責務」「基本的施策」) is all words of the question."""
        header = set(self.tokenizer.query_terms(row.split("\t", 1)[0]))
        return bool(header) and header <= q_terms

    def _weight(self, term: str) -> float:
        return self.idf.get(term, self._unknown_weight)

    def candidates(
        self,
        question: str,
        hits: list[NodeWithScore],
        retrieved: set[str] | None = None,
        meaning: SentenceSimilarity | None = None,
    ) -> list[_Candidate]:
        """Every sentence of `hits` (a `pool`) scored; `retrieved` names the ids that came from the retriever.

        With `meaning` (for questions in another language, whose words never occur
        in the passages) a sentence is credited for its embedding similarity to the
        question instead of for shared terms.
        """
        retrieved = retrieved if retrieved is not None else {h.node.node_id for h in hits}
        q_terms = set(self.tokenizer.query_terms(question))
        total = sum(self._weight(t) for t in q_terms) or 1.0
        asked = AskedFor.of(question)
        out: list[_Candidate] = []
        in_pool = {h.node.node_id: h.node for h in hits}
        rank = -1
        for index_in_pool, hit in enumerate(hits):
            following = in_pool.get(hit.node.next_node.node_id) if hit.node.next_node else None
            continued = following is not None and _ends_with_heading_of(hit.node, following)
            if hit.node.node_id in retrieved:
                rank += 1  # a neighbour added by `pool` shares the rank of the passage it follows
            text = hit.node.get_content()
            context = set(self.tokenizer.terms(hit.node.metadata.get("section", ""))) & q_terms
            defined = set(self.tokenizer.terms(hit.node.metadata.get("defines", ""))) & q_terms
            spans = sentence_spans(text)
            for index, (start, end) in enumerate(spans):
                sentence = text[start:end]
                plain = normalize(sentence)
                s_terms = (set(self.tokenizer.terms(sentence)) | defined) & q_terms
                is_last = index == len(spans) - 1
                if is_last and continued:
                    continue  # a closing heading: its content (the next chunk, in the pool) is the answer
                is_label = _is_label(sentence, is_last)
                asked_value = asked.value_in(plain)
                if is_label:
                    context |= s_terms
                    if not asked_value:  # a label answers only together with what it introduces
                        end = _extend_label(spans, index, LABEL_EXTENSION_CHARS)
                        sentence = text[start:end]
                own = sum(self._weight(t) for t in s_terms)
                inherited = sum(self._weight(t) for t in context - s_terms) * CONTEXT_WEIGHT
                if meaning is None:
                    score = (own + inherited) / total + RANK_PRIOR / (rank + 1)
                else:
                    similarity = meaning(hit.node, start, end)
                    score = max(0.0, similarity - DENSE_FLOOR) / DENSE_SCALE + RANK_PRIOR / (rank + 1)
                score += self._bonus(asked, sentence, plain, bool(asked_value), bool(defined), q_terms)
                if len(plain) < 12 and not is_label:
                    score *= 0.5  # fragments rarely answer anything
                out.append(_Candidate(index_in_pool, (start, end), sentence, score, s_terms | context))
        return sorted(out, key=lambda c: -c.score)

    def compose(
        self, question: str, hits: list[NodeWithScore], meaning: SentenceSimilarity | None = None
    ) -> tuple[str, list[Citation]]:
        """(answer text with [n] markers, citations)."""
        retrieved = {h.node.node_id for h in hits}
        hits = self.pool(hits)
        ranked = self.candidates(question, hits, retrieved, meaning)
        if not ranked:
            return "", []
        best = ranked[0].score
        chosen: list[_Candidate] = [ranked[0]]
        covered = set(ranked[0].terms)
        for cand in ranked[1:]:
            if len(chosen) >= MAX_SENTENCES or cand.score < SECOND_SENTENCE_RATIO * best:
                break
            inner = next((c for c in chosen if _inside(c, cand)), None)
            if inner is not None:  # a label-extended span around a chosen sentence: keep the wider one
                if sum(len(c.text) for c in chosen if c is not inner) + len(cand.text) <= MAX_ANSWER_CHARS:
                    chosen[chosen.index(inner)] = cand
                    covered |= cand.terms
                continue
            length = sum(len(c.text) for c in chosen) + len(cand.text)
            if length > MAX_ANSWER_CHARS or normalize(cand.text) in {normalize(c.text) for c in chosen}:
                continue
            if any(_inside(cand, c) for c in chosen):
                continue  # already said by a wider chosen span
            if cand.terms - covered or cand.hit_rank == chosen[0].hit_rank:
                chosen.append(cand)
                covered |= cand.terms
        # read in document order within a passage, passages in rank order
        chosen.sort(key=lambda c: (c.hit_rank, c.span[0]))
        numbers, citations = cite([(hits[c.hit_rank], c.span) for c in chosen])
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


def section_path(node: TextNode) -> list[str]:
    """The headings above `node`, outermost first, in search form."""
    section = node.metadata.get("section", "")
    return [part.strip() for part in normalize(section).split(" > ")] if section else []


def _ends_with_heading_of(node: TextNode, following: TextNode) -> bool:
    """`node` closes with a heading of `following`'s section path (the chunk border fell under a heading)."""
    spans = sentence_spans(node.get_content())
    if not spans:
        return False
    last = normalize(node.get_content()[spans[-1][0] : spans[-1][1]])
    return bool(last) and last in section_path(following)


def _inside(inner: _Candidate, outer: _Candidate) -> bool:
    """`inner` is a span of the same passage lying within `outer` (a sentence and its label-extended span)."""
    return inner.hit_rank == outer.hit_rank and outer.span[0] <= inner.span[0] and inner.span[1] <= outer.span[1]


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
