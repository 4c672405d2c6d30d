"""Fitting the learned ranker on the real index: labels, grouped folds, figures and a bit-for-bit model."""

from __future__ import annotations

import json

import numpy as np

from eval.data import load_questions
from eval.train import Source, load_indexes
from eval.train_rank import collect_rank_rows, figures, fit, fold_of, order_metrics, train_ranker
from rag.rerank import RANK_FEATURES, LearnedRanker
from tests.conftest import QUESTIONS


def _subset(tmp_path, n: int):
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_rows_label_the_chunks_that_hold_the_evidence(tmp_path, corpus_index):
    path = QUESTIONS  # 132 questions, 14 of them unanswerable
    sources = [Source("eval", path, corpus_index)]
    rows = collect_rank_rows(sources, load_indexes(sources, None), progress=False)
    asked = load_questions(path)
    assert len(rows.features) == sum(q.answerable and bool(q.evidence) for q in asked) < len(asked)
    for features, evidence in zip(rows.features, rows.evidence):
        assert features.shape == (len(evidence), len(RANK_FEATURES))
    # the union of the rankings' tops holds nearly every evidence string; fusion's order puts most in its top 5
    assert np.mean([e.any(axis=0).mean() for e in rows.evidence]) >= 0.9
    fused = figures(rows, [np.zeros(len(f)) for f in rows.features], np.ones(len(rows.features), bool))
    assert fused["fusion_recall_at_5"] >= 0.8
    assert len(set(fold_of(rows).values())) == len(set(rows.groups))  # a document is one fold


def test_order_metrics_read_recall_and_reciprocal_rank():
    evidence = np.array([[False, False], [True, False], [False, False], [False, True]])
    assert order_metrics(np.arange(4), evidence, k=2) == (0.5, 0.5)
    assert order_metrics(np.array([3, 1, 0, 2]), evidence, k=2) == (1.0, 1.0)


def test_training_writes_a_deterministic_model_and_its_card(tmp_path, corpus_index):
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:60]
    parts = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path, chunk in zip(parts, (lines[:30], lines[30:])):
        path.write_text("\n".join(chunk) + "\n", encoding="utf-8")
    sources = [Source("eval", parts[0], corpus_index), Source("blind", parts[1], corpus_index)]
    loaded = load_indexes(sources, None)
    rows = collect_rank_rows(sources, loaded, progress=False)
    assert fit(rows).booster.model_to_string() == fit(rows).booster.model_to_string()
    card, rankers = train_ranker(sources, loaded, tmp_path / "r.txt", tmp_path / "r.json", progress=False)
    assert card["features"] == list(RANK_FEATURES) and set(card["training_data"]) == {"eval", "blind"}
    cv = card["cross_validation"]
    assert cv["all"]["questions"] == len(rows.features) and "source:blind" in cv
    assert 0 <= cv["all"]["learned_mrr_at_10"] <= 1
    json.dumps(card)
    shipped = LearnedRanker.load(tmp_path / "r.txt", tmp_path / "r.json")
    np.testing.assert_allclose(shipped.scores(rows.features[0]), rankers.full.scores(rows.features[0]))
    # each document's questions get a ranker fitted without that document
    assert len({id(r) for r in rankers.by_group.values()}) == len(set(fold_of(rows).values()))
