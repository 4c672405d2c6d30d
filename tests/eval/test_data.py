from collections import Counter
from pathlib import Path

import pytest

from eval.data import QuestionFileError, check_against_corpus, load_questions
from rag.text import has_japanese
from tests.conftest import CORPUS, QUESTIONS


def test_eval_set_is_large_varied_and_verbatim():
    questions = load_questions(QUESTIONS)
    types = Counter(q.type for q in questions)
    assert len(questions) >= 100
    assert types["paraphrase"] >= 15 and types["unanswerable"] >= 12 and len(types) == 7
    assert {d for q in questions for d in q.docs} == {p.name for p in CORPUS.glob("*.txt")}
    assert check_against_corpus(questions, CORPUS) == []


def test_english_set_is_verbatim_and_english():
    questions = load_questions(QUESTIONS.with_name("questions_en.jsonl"))
    assert len(questions) >= 20 and sum(not q.answerable for q in questions) >= 5
    assert all(not has_japanese(q.question) for q in questions)
    assert check_against_corpus(questions, CORPUS) == []


def test_holdout_set_is_verbatim_and_shares_no_question_with_the_eval_set():
    holdout = load_questions(QUESTIONS.with_name("questions_holdout.jsonl"))
    assert len(holdout) >= 140 and sum(not q.answerable for q in holdout) >= 20
    assert not {q.question for q in holdout} & {q.question for q in load_questions(QUESTIONS)}
    assert check_against_corpus(holdout, CORPUS) == []


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("questions_blind.jsonl", 72),
        ("questions_blind2.jsonl", 78),
        ("questions_train.jsonl", 500),
        ("questions_train2.jsonl", 500),
    ],
)
def test_blind_and_training_sets_are_verbatim_colloquial_and_apart(name, size):
    questions = load_questions(QUESTIONS.with_name(name))
    kinds = Counter(q.extra.get("kind") for q in questions)
    assert len(questions) >= size and min(kinds[k] for k in ("colloquial", "yesno", "two_asks", "unanswerable")) >= 14
    others = {
        q.question
        for f in ("questions.jsonl", "questions_holdout.jsonl")
        for q in load_questions(QUESTIONS.with_name(f))
    }
    assert not {q.question for q in questions} & others
    assert check_against_corpus(questions, CORPUS) == []


@pytest.mark.parametrize("name", ["questions_blind.jsonl", "questions_blind2.jsonl"])
def test_blind_sets_share_no_question_with_the_training_set(name):
    blind = load_questions(QUESTIONS.with_name(name))
    train = load_questions(QUESTIONS.with_name("questions_train.jsonl"))
    assert not {q.question for q in blind} & {q.question for q in train}


@pytest.mark.parametrize(
    "name",
    [
        "questions_blind3.jsonl",
        "questions_blind4.jsonl",
        "questions_blind5.jsonl",
        "questions_blind6.jsonl",
        "questions_blind7.jsonl",
        "questions_blind8.jsonl",
        "questions_blind9.jsonl",
        "questions_blind10.jsonl",
        "questions_blind11.jsonl",
        "questions_blind12.jsonl",
        "questions_blind13.jsonl",
        "questions_blind14.jsonl",
        "questions_blind15.jsonl",
        "questions_blind16.jsonl",
        "questions_blind17.jsonl",
        "questions_blind18.jsonl",
        "questions_blind19.jsonl",
        "questions_blind20.jsonl",
        "questions_blind21.jsonl",
        "questions_blind22.jsonl",
        "questions_blind23.jsonl",
        "questions_blind24.jsonl",
        "questions_blind25.jsonl",
        "questions_blind26.jsonl",
        "questions_blind27.jsonl",
        "questions_blind28.jsonl",
    ],
)
def test_later_blind_sets_are_verbatim_and_no_near_copy_of_an_earlier_set(name):
    """Writers who never saw our sets still pick the same salient facts: near-copies were dropped."""
    from difflib import SequenceMatcher

    blind = load_questions(QUESTIONS.with_name(name))
    assert len(blind) >= 40 and check_against_corpus(blind, CORPUS) == []
    earlier = [
        q.question
        for f in ("questions.jsonl", "questions_holdout.jsonl", "questions_train.jsonl", "questions_blind.jsonl")
        for q in load_questions(QUESTIONS.with_name(f))
    ]
    for q in blind:
        assert max(SequenceMatcher(None, q.question, e).ratio() for e in earlier) <= 0.75, q.id


def test_dev_set_is_verbatim_rich_in_near_misses_and_no_near_copy_of_what_the_models_are_fitted_on():
    """Measured on, never fitted on: a question close to a training one would read the training set back."""
    from difflib import SequenceMatcher

    dev = load_questions(QUESTIONS.with_name("questions_dev.jsonl"))
    kinds = Counter(q.extra.get("kind") for q in dev)
    assert len(dev) >= 150 and kinds["unanswerable"] >= 60 and check_against_corpus(dev, CORPUS) == []
    fitted = [
        q.question
        for f in ("questions.jsonl", "questions_holdout.jsonl", "questions_train.jsonl")
        for q in load_questions(QUESTIONS.with_name(f))
    ]
    for q in dev:
        assert max(SequenceMatcher(None, q.question, t).ratio() for t in fitted) <= 0.75, q.id


def test_second_training_set_has_no_near_copy_of_a_held_apart_blind_set():
    """Blind sets not yet retired into training measure changes: a training question close to one would leak it."""
    from difflib import SequenceMatcher

    from eval.train import RETIRED_BLIND_SETS

    held = [
        q.question
        for path in sorted(QUESTIONS.parent.glob("questions_blind*.jsonl"))
        if path.name not in RETIRED_BLIND_SETS
        for q in load_questions(path)
    ]
    assert len(held) >= 300
    for q in load_questions(QUESTIONS.with_name("questions_train2.jsonl")):
        for h in held:
            matcher = SequenceMatcher(None, q.question, h)
            assert matcher.real_quick_ratio() <= 0.75 or matcher.quick_ratio() <= 0.75 or matcher.ratio() <= 0.75, q.id


def test_checker_flags_evidence_not_in_the_file():
    questions = load_questions(QUESTIONS)[:1]
    questions[0].evidence = ["この文は資料にない"]
    assert check_against_corpus(questions, CORPUS)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"id": "x", "question": "q"}', "missing field"),
        ('{"id": "x", "question": "q", "answerable": true, "evidence": []}', "evidence"),
        ('{"id": "x", "question": "q", "answerable": false, "type": "weird"}', "unknown type"),
    ],
)
def test_bad_question_files_name_the_line(tmp_path: Path, line: str, message: str):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "ok", "question": "q", "answerable": false}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match=rf"q.jsonl:2: .*{message}"):
        load_questions(path)
