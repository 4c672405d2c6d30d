"""Fitting the answer decision: labels, grouped folds, and a bit-for-bit deterministic model."""

from __future__ import annotations

import json

import numpy as np

from eval.data import Question
from eval.train import (
    CALIBRATION_BLIND_SETS,
    MAX_FALSE_ABSTENTION,
    RETIRED_BLIND_SETS,
    Source,
    answerability_of,
    answerable_out_of_fold,
    answers,
    calibrate,
    choose_threshold,
    collect,
    cross_validated_eval,
    figures,
    fold_matrix,
    out_of_fold,
    prior_out_of_fold,
    question_matrix,
)
from rag.decide import QUESTION_FEATURES, Decider, QuestionPrior, fit, fit_answerable
from tests.conftest import QUESTIONS


def newest_blind_set() -> str:
    """The newest blind set's file name: it measures the next change, so nothing fits or calibrates on it."""
    return max(QUESTIONS.parent.glob("questions_blind*.jsonl"), key=lambda p: int(p.stem[15:] or 1)).name


def _q(**kw) -> Question:
    base = dict(
        id="x",
        question="?",
        answerable=True,
        docs=["d"],
        evidence=["2024年2月に設立"],
        answer="",
        keywords=["2024年2月"],
        type="factoid",
    )
    return Question(**(base | kw))


def test_a_candidate_answers_when_it_holds_the_evidence_or_the_keywords():
    assert answers("AISIは 2024 年 2 月に設立された。", _q(), keywords_label=True)
    assert answers("AISIは2024年2月に発足。", _q(), keywords_label=True)  # keywords, not evidence
    assert not answers("AISIは2024年2月に発足。", _q(), keywords_label=False)
    assert not answers("AISIは2024年2月に設立された。", _q(answerable=False), keywords_label=True)


def test_threshold_keeps_false_abstention_within_the_limit():
    best = np.array([0.9, 0.8, 0.1, 0.05, 0.6, 0.02])
    answerable = np.array([True, True, True, True, False, False])
    t = choose_threshold(best, answerable)
    assert np.mean(best[answerable] < t) <= 0.05 and t <= 0.05


def test_folds_group_by_document_and_the_fit_is_deterministic(tmp_path, corpus_index):
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:40]
    subset = tmp_path / "q.jsonl"
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = collect([Source("eval", subset, corpus_index)], progress=False)
    assert len(rows.groups) == 40 and len({g for g in rows.groups}) >= 2
    X, y = np.vstack(rows.features), np.concatenate(rows.labels)
    assert 0 < y.sum() < len(y)
    assert fit(X, y, rounds=30).model_to_string() == fit(X, y, rounds=30).model_to_string()
    oof = out_of_fold(rows, folds=2)
    card = figures(rows, oof, 0.1)
    assert card["questions"] == 40 and 0 <= card["top1_answer_sentence"] <= 1
    json.dumps(card)  # the card is plain JSON
    # the question-level model: one row per question, out of fold by the same document groups
    prior = prior_out_of_fold(rows, folds=2)
    assert rows.text[0] and ((prior > 0) & (prior < 1)).all()
    matrix = question_matrix(rows, oof, prior)
    assert matrix.shape == (40, len(QUESTION_FEATURES)) and np.array_equal(matrix[:, -1], prior)
    # a fold's question model sees its training questions' priors as fitted without their own documents
    train = np.flatnonzero(np.array(rows.groups) != rows.groups[0])
    assert len({rows.groups[i] for i in train}) >= 2
    fold = fold_matrix(rows, matrix, train, folds=2)
    assert np.array_equal(fold[:, :-1], matrix[train, :-1])
    assert np.array_equal(fold[:, -1], prior_out_of_fold(rows, train, folds=2)[train])
    qnum = np.concatenate(rows.question)
    assert np.allclose(matrix[:, 0], [oof[qnum == i].max() if (qnum == i).any() else 0 for i in range(40)])
    answerability = answerable_out_of_fold(rows, matrix, folds=2)
    assert answerability.shape == (40,) and ((answerability >= 0) & (answerability <= 1)).all()
    assert figures(rows, oof, 0.5, answerability=answerability)["questions"] == 40


def test_blind_sets_of_one_name_are_one_set_and_only_reported_ones_train(tmp_path, corpus_index):
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:24]
    parts = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path, chunk in zip(parts, (lines[:12], lines[12:])):
        path.write_text("\n".join(chunk) + "\n", encoding="utf-8")
    sources = [Source("blind", path, corpus_index) for path in parts]
    rows = collect(sources, progress=False)
    card = {"threshold": 0.3, "sentence_threshold": 0.1}
    reports = cross_validated_eval(sources, rows, card, out_of_fold(rows, folds=2), folds=2)
    assert list(reports) == ["blind"] and reports["blind"]["overall"]["questions"] == 24
    # the newest blind set measures the next change: it is never among the training sets
    assert newest_blind_set() not in RETIRED_BLIND_SETS
    assert all((QUESTIONS.parent / name).exists() for name in RETIRED_BLIND_SETS)


def test_threshold_is_chosen_on_questions_the_decision_was_not_fitted_on(tmp_path, corpus_index):
    """The shipped models read the calibration questions as they read users'; the threshold keeps their
    false abstention within the limit, and they are neither training data nor the newest (measuring) set."""
    assert not set(CALIBRATION_BLIND_SETS) & set(RETIRED_BLIND_SETS)
    assert all((QUESTIONS.parent / name).exists() for name in CALIBRATION_BLIND_SETS)
    assert newest_blind_set() not in CALIBRATION_BLIND_SETS
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    fitted, held = tmp_path / "fit.jsonl", tmp_path / "held.jsonl"
    fitted.write_text("\n".join(lines[:60]) + "\n", encoding="utf-8")
    held.write_text("\n".join(lines[-40:]) + "\n", encoding="utf-8")
    rows = collect([Source("eval", fitted, corpus_index)], progress=False)
    calibration = collect([Source("calibration", held, corpus_index)], progress=False)
    oof = out_of_fold(rows, folds=2)
    prior = prior_out_of_fold(rows, folds=2)
    answerable = np.array(rows.answerable, dtype=float)
    decider = Decider(
        fit(np.vstack(rows.features), np.concatenate(rows.labels), rounds=30),
        fit_answerable(question_matrix(rows, oof, prior), answerable),
        QuestionPrior.fit(rows.text, rows.answerable),
        0.0,
        0.1,
    )
    threshold, card = calibrate(decider, calibration)
    assert 0.0 <= threshold < 1.0 and card["answerable"] + card["unanswerable"] == 40
    assert card["false_abstention"] <= MAX_FALSE_ABSTENTION
    # the threshold is the highest within the limit: one step higher refuses too many answerable questions
    scores = answerability_of(decider, calibration)
    held_answerable = np.array(calibration.answerable)
    assert threshold >= 0.95 or np.mean(scores[held_answerable] < threshold + 0.01) > MAX_FALSE_ABSTENTION
