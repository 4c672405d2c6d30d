"""Answers with citations, abstention, follow-ups and input validation on the real index."""

from __future__ import annotations

import pytest

from eval.data import load_questions
from eval.metrics import contains_evidence
from rag.compose import NOT_FOUND
from rag.qa import MAX_QUESTION_CHARS, QueryError
from tests.conftest import CORPUS, QUESTIONS, both_stores


@pytest.fixture(params=["faiss", "postgres"], scope="module")
def qa(request):
    return both_stores(request)


def test_answers_cite_passages_that_contain_their_evidence(qa):
    answer = qa.ask("EUのAI Actはいつ発効しましたか？")
    assert not answer.abstained and "[1]" in answer.text
    cite = answer.citations[0]
    assert cite.doc == "000_eef5b314d8d39818.txt" and cite.title and cite.section
    assert cite.evidence in cite.text and "2024 年 8 月" in cite.evidence
    source = (CORPUS / cite.doc).read_text(encoding="utf-8").split("\n")
    assert "2024 年 8 月" in "".join(source[cite.lines[0] - 1 : cite.lines[1]])


def test_most_answerable_questions_are_answered_with_supported_citations(qa):
    questions = [q for q in load_questions(QUESTIONS) if q.answerable]
    supported = 0
    for q in questions:
        answer = qa.ask(q.question)
        if not answer.abstained and any(contains_evidence(c.text, e) for c in answer.citations for e in q.evidence):
            supported += 1
    assert supported / len(questions) >= 0.7  # 0.84 (eval set, the model fitted on it); a drop means a regression


def test_unanswerable_questions_abstain_with_related_passages(qa):
    questions = [q for q in load_questions(QUESTIONS) if not q.answerable]
    abstained = [qa.ask(q.question) for q in questions]
    # 0.29 measured: without a reader the decision refuses only what its words cannot reach (see README)
    assert sum(a.abstained for a in abstained) / len(abstained) >= 0.25
    first = next(a for a in abstained if a.abstained)
    assert first.text == NOT_FOUND and first.related and not first.citations


def test_follow_up_is_resolved_against_the_previous_turn(qa):
    first = qa.ask("AISIとは何ですか")
    follow = qa.ask("それはいつ設立された？", history=[{"question": "AISIとは何ですか", "answer": first.text}])
    assert "aisi" in follow.query.lower()
    assert not follow.abstained and "2024年2月" in follow.text


@pytest.mark.parametrize("bad", ["", "   \n\t ", "？？？！！", "🙂🙂", "\x00\x01"])
def test_empty_or_symbol_only_questions_get_a_clear_message(qa, bad):
    with pytest.raises(QueryError):
        qa.ask(bad)


def test_huge_question_states_the_limit(qa):
    with pytest.raises(QueryError, match=f"{MAX_QUESTION_CHARS:,}"):
        qa.ask("AI" * 50_000)


@pytest.mark.parametrize(
    "odd",
    [
        "A",
        "法",
        "<img src=x onerror=alert(1)> AI法とは",
        "AI法 and 罰則?",
        "What is the AI Safety Institute?",
        "🙂AI法とは🙂",
        "AI\x07法の\u200b目的\x1bは？",
        "ＡＩ法の目的は何ですか？ What is its purpose? 目的是什么",
        "?" * 10 + "AISI",
    ],
)
def test_odd_questions_answer_or_abstain_without_error(qa, odd):
    answer = qa.ask(odd)
    assert answer.abstained or answer.citations


@pytest.mark.parametrize(
    "code", ["<script>alert(1)</script>", "'; DROP TABLE docs; --", "<b></b><i></i>", "SELECT * FROM users WHERE 1=1;"]
)
def test_markup_or_code_without_a_question_gets_the_validation_message(qa, code):
    with pytest.raises(QueryError, match="プログラムやマークアップ"):
        qa.ask(code)


def test_a_question_with_two_asks_is_answered_part_by_part(qa):
    answer = qa.ask("AIセーフティ・インスティテュートはいつ設立されて、AI戦略本部の本部長は誰？")
    assert not answer.abstained
    assert "2024年2月" in answer.text.replace(" ", "") and "内閣総理大臣" in answer.text
    assert len({c.doc for c in answer.citations}) >= 2  # each ask cited from its own passage
    sentences = [s for s in answer.text.split("[") if s.strip()]
    assert len(sentences) == len(set(sentences))


def test_asks_closed_by_question_marks_keep_the_whole_answer_and_add_each_asks_sentence(qa):
    question = "AI法が全面施行されたのはいつ？あと基本計画はAI法の何条に基づくの？"
    whole, _ = qa._answer_one(question, qa.retriever.retrieve_with_signals(question, 5))  # read as one ask
    answer = qa.ask(question)
    text = answer.text.replace(" ", "")
    assert "9月1日" in text and "第18条" in text
    cited = {c.doc for c in answer.citations}  # 第18条 stands only in 004; the date in 001 (and 002's overview)
    assert "004_e0b8d5341bdd7257.txt" in cited and len(cited) >= 2
    sentences = [s for s in answer.text.split("[") if s.strip()]
    assert len(sentences) == len(set(sentences))
    assert whole and whole.split("[")[0] in answer.text  # what the question read whole found stays


def test_a_part_the_documents_do_not_answer_is_said_to_be_missing(qa):
    answer = qa.ask("AI戦略本部の本部長は誰で、AI戦略本部の年間予算はいくら？")
    assert not answer.abstained and "内閣総理大臣" in answer.text
    assert "「AI戦略本部の年間予算はいくら」については資料には記載が見つかりませんでした" in answer.text


def test_a_part_the_quoted_sentence_already_answers_is_not_said_to_be_missing(qa):
    """One sentence names the state and the count; the second ask, read alone, is not confident enough to answer
    by itself, but the sentence it would pick is the one already quoted (it was said to be missing before)."""
    answer = qa.ask("アメリカの失業保険でAIが詐欺判定をミスった件って、どこの州の話？何人が誤って告発されたの？")
    text = answer.text.replace(" ", "")
    assert "ミシガン州" in text and "2万人" in text
    assert "記載が見つかりませんでした" not in text


def test_definition_that_lives_only_in_a_footnote_is_found_and_answered(qa):
    answer = qa.ask("ハルシネーションとは何ですか？")
    assert not answer.abstained and "事実とは異なる" in answer.text
    assert answer.citations[0].section.endswith("ハルシネーション")


def test_english_question_is_answered_from_the_japanese_passage(qa):
    answer = qa.ask("When did the EU AI Act enter into force?")
    assert not answer.abstained
    assert "2024 年 8 月" in answer.text and "AI Act が発効" in answer.text
    assert answer.citations[0].doc == "000_eef5b314d8d39818.txt"


def test_english_question_the_documents_cannot_answer_abstains(qa):
    answer = qa.ask("How many staff does AISI have?")
    assert answer.abstained and answer.related


def test_a_count_the_documents_state_is_answered_with_it(qa):
    counted = qa.ask("国際行動規範の報告枠組みに回答した日本企業は何社？")
    assert not counted.abstained and "9社" in counted.text


def test_a_term_defined_only_in_a_plain_numbered_footnote_is_answered_from_it(qa):
    answer = qa.ask("システミック・リスクとはどんなリスク？")
    assert not answer.abstained and "波及" in answer.text
    assert any(c.section.startswith("脚注") for c in answer.citations)
