"""Which questions lean on the previous turn, with the real tokenizer."""

from __future__ import annotations

import pytest

from rag.query import needs_context, resolve_followup
from rag.text import default_tokenizer


@pytest.mark.parametrize("question", ["それはいつ設立された？", "いつ施行された？", "根拠は？", "AIの目的は？"])
def test_elliptical_questions_need_the_previous_turn(question):
    assert needs_context(question, default_tokenizer())


@pytest.mark.parametrize(
    "question", ["システミック・リスクとはどんなリスク？", "AISIとは？", "「反転攻勢」って何？", "GPAIはいつ？"]
)
def test_a_short_question_naming_its_own_topic_stands_alone(question):
    history = [{"question": "AIの電力や計算の土台づくりについて、骨子はどんなインフラを挙げている？"}]
    assert resolve_followup(question, history, default_tokenizer()) == question


@pytest.mark.parametrize("question", ["AI法と指針はそれぞれいつ決まった？", "日本のAISIって、どこの国の後にできたの？"])
def test_each_and_which_are_no_pointer_to_the_previous_turn(question):
    """「それぞれ」 ("each") and 「どこの」 ("which") hold それ and この but point at nothing said before."""
    history = [{"question": "AIの電力や計算の土台づくりについて、骨子はどんなインフラを挙げている？"}]
    assert resolve_followup(question, history, default_tokenizer()) == question
    assert needs_context("それぞれの期限は？", default_tokenizer())  # still too short to stand alone
