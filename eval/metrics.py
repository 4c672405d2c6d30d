"""Retrieval and answer metrics as plain functions over one question's results."""

from __future__ import annotations

import statistics

from ingest.clean import clean_inline
from rag.text import squash

BOUNDARY_SHARE = 0.5  # an evidence cut by a chunk boundary counts if this share of it is in one passage


def match_form(text: str) -> str:
    """Evidence is quoted from the raw file; compare it as the cleaner would show it (NFKC, no spaces, no marks)."""
    return squash(clean_inline(text))


def contains_evidence(passage: str, evidence: str) -> bool:
    """The passage holds the evidence, or the part of it on this side of a chunk boundary."""
    p, ev = match_form(passage), match_form(evidence)
    if not ev:
        return False
    if ev in p:
        return True
    need = max(1, int(len(ev) * BOUNDARY_SHARE))
    return any(p.endswith(ev[:size]) or p.startswith(ev[-size:]) for size in range(len(ev) - 1, need - 1, -1))


def _in_docs(item: dict, docs: list[str]) -> bool:
    return not docs or item.get("doc") in docs


def recall_at_k(retrieved: list[dict], evidence: list[str], docs: list[str], k: int) -> float:
    """Share of evidence strings found in the top-k passages (of the expected documents)."""
    if not evidence:
        return 0.0
    top = [r for r in retrieved[:k] if _in_docs(r, docs)]
    return sum(any(contains_evidence(r["text"], ev) for r in top) for ev in evidence) / len(evidence)


def reciprocal_rank(retrieved: list[dict], evidence: list[str], docs: list[str], k: int = 10) -> float:
    for rank, r in enumerate(retrieved[:k], 1):
        if _in_docs(r, docs) and any(contains_evidence(r["text"], ev) for ev in evidence):
            return 1.0 / rank
    return 0.0


def keyword_hit(answer: str, keywords: list[str]) -> bool:
    """All keywords appear in the answer (NFKC, whitespace ignored)."""
    text = squash(answer)
    return all(squash(kw) in text for kw in keywords)


def keyword_share(answer: str, keywords: list[str]) -> float:
    if not keywords:
        return 1.0
    text = squash(answer)
    return sum(squash(kw) in text for kw in keywords) / len(keywords)


def cited_support(citations: list[dict], evidence: list[str]) -> bool:
    """Some citation of the answer contains some evidence string."""
    return any(contains_evidence(c["text"], ev) for c in citations for ev in evidence)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def abstention_scores(rows: list[tuple[bool, bool]]) -> dict[str, float]:
    """From (answerable, abstained) pairs: precision/recall of abstaining on unanswerable, false-abstain rate."""
    unanswerable = [abst for ans, abst in rows if not ans]
    answerable = [abst for ans, abst in rows if ans]
    abstained = [ans for ans, abst in rows if abst]
    return {
        "abstain_recall": sum(unanswerable) / len(unanswerable) if unanswerable else 0.0,
        "abstain_precision": sum(1 for ans in abstained if not ans) / len(abstained) if abstained else 0.0,
        "false_abstain_rate": sum(answerable) / len(answerable) if answerable else 0.0,
    }
