"""Support measurement behind abstention, with the real tokenizer and the corpus vocabulary."""

from __future__ import annotations

from rag.abstain import AbstainPolicy, measure_support


def test_an_unseen_verb_is_wording_but_an_unseen_noun_is_a_missing_topic(qa):
    assert "飛ばす" not in qa.idf and "罰金" not in qa.idf  # neither occurs in the corpus
    passage = "ドローンは航空法その他、小型無人機等禁止法などの法律によって規制される。"
    wording = measure_support("ドローンを飛ばすときの法律は？", [passage], qa.idf, qa.tokenizer)
    topic = measure_support("ドローンの罰金を定める法律は？", [passage], qa.idf, qa.tokenizer)
    assert wording.unseen == 0.0 and wording.coverage == 1.0
    assert topic.unseen > 0.3 and topic.coverage < 0.7
    policy = AbstainPolicy()
    assert not policy.abstain(wording) and policy.abstain(topic)
