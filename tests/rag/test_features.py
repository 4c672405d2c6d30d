"""What the decision reads: the asked-for kind, word vectors and the feature rows on the real index."""

from __future__ import annotations

import pytest

from rag.features import FEATURES, AskedFor
from rag.wordvectors import default_word_vectors, word_hash


def test_kinds_of_answer_a_question_asks_for():
    assert AskedFor.of("AI法はいつ成立した？").date
    assert AskedFor.of("AIセーフティ・インスティテュートとは何ですか").definition
    assert AskedFor.of("回答した企業は何社？").counter.search("9社")
    assert AskedFor.of("AI戦略本部のトップは誰？").person
    assert AskedFor.of("生成AIを仕事で使ってもいいの？").yes_no
    assert not AskedFor.of("生成AIを何に使えばいいの？").yes_no
    assert AskedFor.of("予算はどれくらい？").quantity.search("1,000億円")


def test_word_hash_is_spacys():
    assert word_hash("お金") == 11785569952267255091  # spacy.strings.hash_string("お金")


def test_word_vectors_tell_synonyms_from_unrelated_words():
    words = default_word_vectors()
    near = words.similarity(["お金", "仕事"], ["予算", "雇用", "カルテ"])
    assert near[0, 0] > 0.3 > near[0, 2] and near[1, 1] > 0.3
    assert words.similarity(["存在しない語ですよ"], ["予算"])[0, 0] == 0.0


def _rows(qa, question):
    retrieval = qa.retriever.retrieve_with_signals(question, 10)
    cands, rows = qa.read(question, retrieval)
    return cands, rows


def test_feature_rows_hold_what_the_sentence_holds(qa):
    cands, rows = _rows(qa, "国際行動規範の報告枠組みに回答した日本企業は何社？")
    assert rows.shape == (len(cands), len(FEATURES))
    counter = FEATURES.index("counter_match")
    assert any(rows[i, counter] == 1 for i, c in enumerate(cands) if "9社" in c.text.replace(" ", ""))
    assert all(rows[i, counter] == 0 for i, c in enumerate(cands) if "社" not in c.text)
    cover = rows[:, FEATURES.index("cover_context")]
    assert cover.max() <= 1.0 + 1e-6 and rows[:, FEATURES.index("cover_gap")].min() == pytest.approx(0.0)


def test_soft_coverage_credits_an_everyday_word(qa):
    cands, rows = _rows(qa, "AIのお金の面はどうなってる？")
    exact = rows[:, FEATURES.index("cover_sentence")]
    soft = rows[:, FEATURES.index("soft_cover_sentence")]
    assert (soft >= exact - 1e-6).all() and (soft > exact + 0.05).any()


def test_focus_is_the_word_the_question_asks_about(qa):
    focus, weight = FEATURES.index("focus_match"), FEATURES.index("focus_weight")
    cands, rows = _rows(qa, "AI戦略会議の議長って誰？")
    assert (rows[:, weight] > 0).all()
    held = [rows[i, focus] for i, c in enumerate(cands) if "議長" in c.text]
    assert held and all(v == 1.0 for v in held)
    # no sentence of the corpus names the office's head: the sentence about the office does not hold the word
    cands, rows = _rows(qa, "人工知能政策推進室の室長って誰？")
    assert cands and (rows[:, focus] < 1.0).all()
    _, rows = _rows(qa, "AI戦略本部について教えて")
    assert (rows[:, focus] == -1.0).all() and (rows[:, weight] == -1.0).all()
