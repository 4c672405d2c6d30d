"""Normalization and the fugashi tokenizer's terms, with the real unidic-lite dictionary."""

from __future__ import annotations

from rag.text import Tokenizer, normalize


def test_normalize_joins_spaced_ai_and_folds_full_width():
    assert normalize("Ａ Ｉ　の活用") == "AI の活用"


def test_a_suru_noun_used_as_a_verb_is_tagged_as_a_verb():
    tokenizer = Tokenizer()
    assert ("例示", "動詞") in tokenizer.tagged_terms("組織が例示されている。")  # a predicate
    assert ("例示", "名詞") in tokenizer.tagged_terms("組織の例示。")


def test_question_frame_words_are_not_query_terms():
    terms = Tokenizer().query_terms("第1節のテーマは何？責任者を決めたほうがいいの？")
    assert "テーマ" not in terms and "ほう" not in terms and "責任" in terms


def test_interrogatives_written_as_one_noun_are_not_query_terms():
    assert Tokenizer().query_terms("性能が向上したのはいつ頃から？") == ["性能", "向上"]
