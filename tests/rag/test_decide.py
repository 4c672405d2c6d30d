"""The shipped answer model: it loads, matches the features, and refuses a model fitted on others."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.decide import CARD_FILE, MODEL_FILE, Decider, DeciderError
from rag.features import FEATURES


def test_shipped_model_loads_with_its_card():
    decider = Decider.load()
    assert 0.0 < decider.threshold < 1.0
    assert decider.card["features"] == list(FEATURES)
    assert decider.card["cross_validation"]["grouped_by"].startswith("document")
    p = decider.probabilities(np.zeros((3, len(FEATURES)), dtype=np.float32))
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()


def test_model_fitted_on_other_features_is_refused(tmp_path):
    card = json.loads(CARD_FILE.read_text(encoding="utf-8"))
    card["features"] = card["features"][:-1]
    (tmp_path / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(DeciderError, match="rag train"):
        Decider.load(MODEL_FILE, tmp_path / "card.json")


def test_missing_model_names_the_command(tmp_path):
    with pytest.raises(DeciderError, match="rag train"):
        Decider.load(tmp_path / "none.txt", tmp_path / "none.json")


def test_the_decision_separates_an_answered_question_from_an_unanswered_one(qa):
    def best(question):
        retrieval = qa.retriever.retrieve_with_signals(question, 10)
        _, rows = qa.read(question, retrieval)
        return qa.decider.probabilities(rows).max()

    assert best("AIセーフティ・インスティテュートはいつ設立された？") > qa.decider.threshold
    assert best("罰金の上限額はいくらですか？") < best("AIセーフティ・インスティテュートはいつ設立された？")
