"""Run a question set through a system and score the results.

A system is anything with `name` and `run(question) -> dict` returning the
results.jsonl fields (answer, abstained, citations, retrieved, timings_ms).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from tqdm import tqdm

from eval import metrics
from eval.data import Question
from rag.generate import LLMGenerator
from rag.ground import Similarity, check_answer
from rag.qa import PolicyQA
from rag.text import Tokenizer, default_tokenizer

RETRIEVED_KEPT = 10


class System(Protocol):
    name: str

    def run(self, question: str) -> dict: ...


class PolicyQASystem:
    """Our default answer path: hybrid retrieval + extractive composer + abstention."""

    name = "seisaku-qa"

    def __init__(self, qa: PolicyQA, k: int = RETRIEVED_KEPT, generator: LLMGenerator | None = None) -> None:
        self.qa = qa
        self.k = k
        self.generator = generator
        if generator:
            self.name = f"seisaku-qa ({generator.name})"

    def run(self, question: str) -> dict:
        answer = self.qa.ask(question, k=max(self.k, RETRIEVED_KEPT), generator=self.generator)
        return {
            "answer": answer.text,
            "abstained": answer.abstained,
            "citations": [
                {
                    "n": c.n,
                    "doc": c.doc,
                    "title": c.title,
                    "text": c.text,
                    "section": c.section,
                    "lines": list(c.lines),
                    "evidence": c.evidence,
                }
                for c in answer.citations
            ],
            "retrieved": [
                {"doc": p.doc, "text": p.text, "score": p.score, "section": p.section, "lines": list(p.lines)}
                for p in answer.passages
            ],
            "timings_ms": answer.timings_ms,
            "generator": answer.generator,
            "notice": answer.notice,
        }


def run_questions(system: System, questions: list[Question], progress: bool = True) -> list[dict]:
    rows = []
    for q in tqdm(questions, desc=f"eval {system.name}", unit="q", disable=not progress):
        out = system.run(q.question)
        rows.append({"id": q.id, "question": q.question, "type": q.type, **out})
    return rows


def _groundedness(row: dict, tokenizer: Tokenizer, similarity: Similarity | None) -> tuple[int, int]:
    """(supported sentences, sentences) of an answer, against the passages it cites."""
    if row["abstained"] or not row["answer"]:
        return 0, 0
    passages = {c.get("n", i + 1): c["text"] for i, c in enumerate(row["citations"])}
    checks = check_answer(row["answer"], passages, tokenizer, similarity)
    return sum(c.supported for c in checks), len(checks)


def score_row(row: dict, q: Question, k: int, tokenizer: Tokenizer, similarity: Similarity | None = None) -> dict:
    """Per-question metric values (None where a metric does not apply)."""
    answerable = q.answerable
    supported, sentences = _groundedness(row, tokenizer, similarity)
    answered = answerable and not row["abstained"]
    return {
        "recall": metrics.recall_at_k(row["retrieved"], q.evidence, q.docs, k) if answerable else None,
        "recall_curve": [metrics.recall_at_k(row["retrieved"], q.evidence, q.docs, i) for i in range(1, 11)]
        if answerable
        else None,
        "rr": metrics.reciprocal_rank(row["retrieved"], q.evidence, q.docs) if answerable else None,
        "keyword": float(metrics.keyword_hit(row["answer"], q.keywords)) if answerable else None,
        "cited_support": float(metrics.cited_support(row["citations"], q.evidence)) if answered else None,
        "supported_sentences": supported,
        "sentences": sentences,
    }


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def aggregate(rows: list[dict], scores: list[dict], questions: list[Question]) -> dict:
    supported = sum(s["supported_sentences"] for s in scores)
    sentences = sum(s["sentences"] for s in scores)
    retrieve_ms = [r["timings_ms"].get("retrieve", 0.0) for r in rows]
    answer_ms = [r["timings_ms"].get("answer", 0.0) for r in rows]
    curve = [s["recall_curve"] for s in scores if s["recall_curve"]]
    return {
        "questions": len(rows),
        "recall_at_k": _mean(s["recall"] for s in scores),
        "mrr_at_10": _mean(s["rr"] for s in scores),
        "keyword_accuracy": _mean(s["keyword"] for s in scores),
        "cited_support": _mean(s["cited_support"] for s in scores),
        "groundedness": supported / sentences if sentences else None,
        "unsupported_sentences": sentences - supported,
        "llm_fallbacks": sum(bool(r.get("notice")) for r in rows),
        **metrics.abstention_scores([(q.answerable, r["abstained"]) for q, r in zip(questions, rows)]),
        "retrieve_ms_p50": metrics.percentile(retrieve_ms, 50),
        "retrieve_ms_p95": metrics.percentile(retrieve_ms, 95),
        "answer_ms_p50": metrics.percentile(answer_ms, 50),
        "answer_ms_p95": metrics.percentile(answer_ms, 95),
        "ask_ms_p50": metrics.percentile([a + b for a, b in zip(retrieve_ms, answer_ms)], 50),
        "ask_ms_p95": metrics.percentile([a + b for a, b in zip(retrieve_ms, answer_ms)], 95),
        "recall_curve": [statistics.fmean(c[i] for c in curve) for i in range(10)] if curve else [],
    }


def evaluate(rows: list[dict], questions: list[Question], k: int, similarity: Similarity | None = None) -> dict:
    """Overall and per-type figures plus the failures a developer needs to look at."""
    tokenizer = default_tokenizer()
    scores = [score_row(r, q, k, tokenizer, similarity) for r, q in zip(rows, questions)]
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(questions):
        by_type[q.type].append(i)
    report = {
        "k": k,
        "overall": aggregate(rows, scores, questions),
        "by_type": {
            t: aggregate([rows[i] for i in idx], [scores[i] for i in idx], [questions[i] for i in idx])
            for t, idx in sorted(by_type.items())
        },
        "failures": failures(rows, scores, questions),
    }
    return report


def failures(rows: list[dict], scores: list[dict], questions: list[Question]) -> list[dict]:
    out = []
    for row, s, q in zip(rows, scores, questions):
        problems = []
        if q.answerable:
            if s["recall"] is not None and s["recall"] < 1.0:
                problems.append("evidence not retrieved")
            if row["abstained"]:
                problems.append("abstained on an answerable question")
            elif not s["keyword"]:
                problems.append("answer misses keywords")
        elif not row["abstained"]:
            problems.append("answered an unanswerable question")
        if problems:
            out.append(
                {
                    "id": q.id,
                    "type": q.type,
                    "question": q.question,
                    "problems": problems,
                    "expected_docs": q.docs,
                    "expected_evidence": q.evidence,
                    "keywords": q.keywords,
                    "answer": row["answer"],
                    "retrieved": [
                        {"doc": r["doc"], "text": r["text"][:160], "score": round(r["score"], 4)}
                        for r in row["retrieved"][:3]
                    ],
                }
            )
    return out
