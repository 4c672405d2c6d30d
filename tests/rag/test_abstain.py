"""Support measurement behind abstention, with the real tokenizer, Sudachi dictionary and corpus vocabulary."""

from __future__ import annotations

from rag.abstain import AbstainPolicy
from rag.synonyms import SynonymGroups


def test_an_unseen_verb_is_wording_but_an_unseen_noun_is_a_missing_topic(qa):
    assert "飛ばす" not in qa.idf and "罰金" not in qa.idf  # neither occurs in the corpus
    passage = "ドローンは航空法その他、小型無人機等禁止法などの法律によって規制される。"
    wording = qa.support.measure("ドローンを飛ばすときの法律は？", [passage])
    topic = qa.support.measure("ドローンの罰金を定める法律は？", [passage])
    assert wording.unseen == 0.0 and wording.coverage == 1.0
    assert topic.unseen > 0.3 and topic.coverage < 0.7
    policy = AbstainPolicy()
    assert not policy.abstain(wording) and policy.abstain(topic)


def test_sudachi_groups_join_synonyms_only():
    synonyms = SynonymGroups()
    assert synonyms.groups("土台") & synonyms.groups("基盤")
    assert synonyms.groups("前もって") & synonyms.groups("あらかじめ")
    assert not synonyms.groups("罰金") & synonyms.groups("基盤")
    assert synonyms.groups("前もって用意") == frozenset()  # a phrase is not one word


def test_a_noun_counts_as_covered_when_the_passage_has_its_synonym(qa):
    assert "土台" not in qa.idf  # the corpus says 基盤
    passage = "計算資源とその基盤となる半導体、データセンターの整備を進める。"
    support = qa.support.measure("計算資源の土台となるものは？", [passage])
    assert support.coverage == 1.0 and support.unseen == 0.0


def test_a_verb_gets_no_synonym_credit(qa):
    passage = "生成AIを利用する事業者は、出力を確認する。"
    assert "利用" in qa.tokenizer.terms(passage) and "使う" not in qa.tokenizer.terms(passage)
    support = qa.support.measure("生成AIを使う事業者は？", [passage])
    assert support.coverage < 1.0


def test_a_word_spelled_out_in_the_passage_is_present_however_it_was_split(qa):
    passage = "村上明子\t独立行政法人情報処理推進機構AIセーフティー・インスティテュート所長"
    assert "所長" not in qa.idf  # the index tokenized this row differently: 所長 is in no vocabulary
    support = qa.support.measure("インスティテュートの所長は誰？", [passage])
    assert support.unseen == 0.0 and support.coverage == 1.0
