"""Fitting the question encoder: evidence rows, a deterministic delta, questions moving toward their evidence, and
the anchor keeping their cosines to other documents near the bundled encoder's."""

from __future__ import annotations

import numpy as np

from eval.data import load_questions
from eval.train_query import QueryConfig, fit, pairs_of, query_vectors, sentence_table
from rag.embedders.e5_torch import E5Torch
from rag.embedders.query_tuning import bundled_model_file, float32_tensors
from tests.conftest import QUESTIONS


def test_fit_is_deterministic_and_moves_questions_toward_their_evidence(faiss_qa):
    vectors, texts, docs = sentence_table(faiss_qa.retriever.index)
    pairs = pairs_of(load_questions(QUESTIONS), texts, docs)[:24]
    assert len(pairs) == 24 and all(p.rows and all(docs[r] == p.doc for r in p.rows) for p in pairs)
    config = QueryConfig(epochs=3, batch=4)
    first, second = (fit(pairs, vectors, docs, config, log=lambda _: None) for _ in range(2))
    delta = float32_tensors(first)
    assert delta and all(np.array_equal(t, float32_tensors(second)[n]) for n, t in delta.items())

    def evidence_rank(e5) -> float:
        q = query_vectors(e5, [p.question.question for p in pairs])
        ranks = []
        for vector, pair in zip(q, pairs):
            rows = np.flatnonzero(docs == pair.doc)
            order = rows[np.argsort(-(vectors[rows] @ vector), kind="stable")]
            ranks.append(min(int(np.flatnonzero(order == r)[0]) for r in pair.rows))
        return float(np.mean(ranks))

    bundled = E5Torch.load(bundled_model_file())
    assert evidence_rank(first) < evidence_rank(bundled)

    def drift_elsewhere(e5) -> float:
        """Mean absolute change, against the bundled encoder, of each question's cosines to other documents."""
        questions = [p.question.question for p in pairs]
        change = (query_vectors(e5, questions) - query_vectors(bundled, questions)) @ vectors.T
        elsewhere = np.stack([docs != p.doc for p in pairs])
        return float(np.abs(change[elsewhere]).mean())

    unanchored = fit(pairs, vectors, docs, QueryConfig(epochs=3, batch=4, anchor=0.0), log=lambda _: None)
    assert config.anchor > 0 and drift_elsewhere(first) < 0.6 * drift_elsewhere(unanchored)
