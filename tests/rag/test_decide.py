"""The shipped answer model: it loads, matches the features, and refuses a model fitted on others."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.decide import ANSWERABLE_FILE, CARD_FILE, MODEL_FILE, QUESTION_FEATURES, Decider, DeciderError
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
    assert 0.0 <= decider.answerability(p, rows) <= 1.0 and decider.answerability(np.zeros(0), rows[:0]) == 0.0


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
    assert ANSWERABLE_FILE.exists()


def test_the_decision_separates_an_answered_question_from_an_unanswered_one(qa):
    def answerability(question):
        retrieval = qa.retriever.retrieve_with_signals(question, 5)
        _, rows = qa.read(question, retrieval)
        return qa.decider.answerability(qa.decider.probabilities(rows), rows)

    answered = answerability("AIセーフティ・インスティテュートはいつ設立された？")
    assert answered >= qa.decider.threshold
    assert answerability("罰金の上限額はいくらですか？") < answered
