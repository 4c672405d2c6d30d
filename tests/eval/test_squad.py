"""SQuAD-format import: articles become documents, answer sentences evidence, left-out articles unanswerable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.data import load_questions
from eval.squad import SquadFormatError, file_name, import_squad

OUTSIDE = Path(__file__).resolve().parents[2].parent / "shared" / "outside" / "jsquad-v1.3_valid-v1.3.json"


def _squad(tmp_path: Path, articles: int) -> Path:
    data = {"data": []}
    for a in range(articles):
        context = f"記事{a} [SEP] 富士山は日本一高い山である。標高は3776メートルで、静岡県と山梨県にまたがる。"
        answer = "3776メートル"
        qas = [
            {
                "id": f"a{a}q0",
                "question": "富士山の標高は？",
                "answers": [{"text": answer, "answer_start": context.index(answer)}],
            }
        ]
        data["data"].append({"title": f"記事{a}", "paragraphs": [{"context": context, "qas": qas}]})
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_articles_become_documents_and_questions_our_schema(tmp_path):
    result = import_squad(_squad(tmp_path, 5), tmp_path / "out", unanswerable_articles=0.4)
    assert (result.documents, result.answerable, result.unanswerable) == (3, 3, 2)
    questions = load_questions(result.questions)
    answerable = [q for q in questions if q.answerable]
    for q in answerable:
        text = (result.corpus / q.docs[0]).read_text(encoding="utf-8")
        assert q.evidence == ["標高は3776メートルで、静岡県と山梨県にまたがる。"] and q.evidence[0] in text
        assert q.keywords == ["3776メートル"] and "[SEP]" not in text
    left_out = {q.extra["article"] for q in questions if not q.answerable}
    assert len(left_out) == 2 and not any((result.corpus / file_name(title)).exists() for title in left_out)


def test_import_is_deterministic(tmp_path):
    a = import_squad(_squad(tmp_path, 6), tmp_path / "a", seed=3).questions.read_text(encoding="utf-8")
    b = import_squad(_squad(tmp_path, 6), tmp_path / "b", seed=3).questions.read_text(encoding="utf-8")
    assert a == b


def test_not_squad_json_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1}', encoding="utf-8")
    with pytest.raises(SquadFormatError, match="paragraphs"):
        import_squad(bad, tmp_path / "out")


@pytest.mark.skipif(not OUTSIDE.exists(), reason="shared/outside not beside the checkout")
def test_the_jsquad_validation_split_imports(tmp_path):
    result = import_squad(OUTSIDE, tmp_path / "jsquad", per_article=40)
    assert (result.documents, result.answerable, result.unanswerable) == (47, 1315, 330)
    assert all(q.evidence[0] for q in load_questions(result.questions) if q.answerable)
