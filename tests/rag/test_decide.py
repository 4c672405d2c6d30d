"""The shipped answer model: it loads, matches the features, and refuses a model fitted on others."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.decide import (
    ANSWERABLE_FILE,
    CARD_FILE,
    MODEL_FILE,
    PRIOR_FILE,
    QUESTION_FEATURES,
    Decider,
    DeciderError,
    QuestionPrior,
)
from rag.features import FEATURES


def test_shipped_model_loads_with_its_card():
    decider = Decider.load()
    assert 0.0 < decider.threshold < 1.0
    assert decider.card["features"] == list(FEATURES)
    assert decider.card["cross_validation"]["grouped_by"].startswith("document")
    assert decider.card["question_features"] == list(QUESTION_FEATURES) and 0.0 < decider.sentence_threshold < 1.0
    rows = np.zeros((3, len(FEATURES)), dtype=np.float32)
    p = decider.probabilities(rows)
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
    assert 0.0 <= decider.answerability(p, rows, "AI法とは？") <= 1.0
    assert decider.answerability(np.zeros(0), rows[:0], "AI法とは？") == 0.0
    assert decider.card["prior"]["questions"] > 1000 and 0.0 < decider.prior("AI法とは？") < 1.0


def test_model_fitted_on_other_features_is_refused(tmp_path):
    card = json.loads(CARD_FILE.read_text(encoding="utf-8"))
    card["features"] = card["features"][:-1]
    (tmp_path / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(DeciderError, match="rag train"):
        Decider.load(MODEL_FILE, tmp_path / "card.json")


def test_missing_model_names_the_command(tmp_path):
    with pytest.raises(DeciderError, match="rag train"):
        Decider.load(tmp_path / "none.txt", tmp_path / "none.json")
    with pytest.raises(DeciderError, match="rag train"):  # the question model is part of the decision
        Decider.load(MODEL_FILE, CARD_FILE, tmp_path / "none.txt")
    (tmp_path / "broken.npz").write_bytes(b"not a model")
    with pytest.raises(DeciderError, match="rag train"):  # and so is the wording prior
        Decider.load(MODEL_FILE, CARD_FILE, ANSWERABLE_FILE, tmp_path / "broken.npz")
    assert ANSWERABLE_FILE.exists() and PRIOR_FILE.exists()


def test_the_wording_prior_is_fitted_deterministically_and_reads_what_is_asked(tmp_path):
    asked = ["AI法とは何ですか", "AISIはいつ設立された？", "基本計画の目的は何？", "AI戦略本部の役割は？"] * 3
    unasked = ["AI室の予算はいくら？", "補助金はいくらもらえる？", "認証の費用はいくら？", "罰金はいくらくらい？"] * 3
    questions, labels = asked + unasked, [True] * len(asked) + [False] * len(unasked)
    prior = QuestionPrior.fit(questions, labels)
    again = QuestionPrior.fit(questions, labels)
    assert np.array_equal(prior.buckets, again.buckets) and np.array_equal(prior.coef, again.coef)
    assert prior("AISIの予算はいくら？") < 0.5 < prior("AISIとは何ですか")
    prior.save(tmp_path / "prior.npz")
    loaded = QuestionPrior.load(tmp_path / "prior.npz")
    assert loaded("AISIの予算はいくら？") == pytest.approx(prior("AISIの予算はいくら？"), abs=1e-5)
    assert QuestionPrior.fit(asked, [True] * len(asked))("何でも") > 0.99  # one class: its share


def test_the_decision_separates_an_answered_question_from_an_unanswered_one(qa):
    def answerability(question):
        retrieval = qa.retriever.retrieve_with_signals(question, 5)
        _, rows = qa.read(question, retrieval)
        return qa.decider.answerability(qa.decider.probabilities(rows), rows, question)

    answered = answerability("AIセーフティ・インスティテュートはいつ設立された？")
    assert answered >= qa.decider.threshold
    assert answerability("罰金の上限額はいくらですか？") < answered
