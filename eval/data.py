"""Question-set format (JSONL) and its validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.text import squash

TYPES = ("factoid", "date_number", "list", "definition", "cross_doc", "paraphrase", "unanswerable")


class QuestionFileError(ValueError):
    """A question file that does not follow the format; the message names the line."""


@dataclass
class Question:
    id: str
    question: str
    answerable: bool
    docs: list[str]  # empty for unanswerable questions
    evidence: list[str]
    answer: str
    keywords: list[str]
    type: str
    extra: dict = field(default_factory=dict)


def _parse(obj: object, where: str) -> Question:
    if not isinstance(obj, dict):
        raise QuestionFileError(f"{where}: expected a JSON object")
    missing = [k for k in ("id", "question", "answerable") if k not in obj]
    if missing:
        raise QuestionFileError(f"{where}: missing field(s) {', '.join(missing)}")
    if not isinstance(obj["question"], str) or not obj["question"].strip():
        raise QuestionFileError(f"{where}: 'question' must be a non-empty string")
    if not isinstance(obj["answerable"], bool):
        raise QuestionFileError(f"{where}: 'answerable' must be true or false")
    doc = obj.get("doc")
    docs = [doc] if isinstance(doc, str) else list(doc or [])
    if not all(isinstance(d, str) for d in docs):
        raise QuestionFileError(f"{where}: 'doc' must be a file name, a list of names or null")
    for key in ("evidence", "keywords"):
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise QuestionFileError(f"{where}: '{key}' must be a list of strings")
    qtype = obj.get("type", "unanswerable" if not obj["answerable"] else "factoid")
    if qtype not in TYPES:
        raise QuestionFileError(f"{where}: unknown type {qtype!r} (one of {', '.join(TYPES)})")
    if obj["answerable"] and not obj.get("evidence"):
        raise QuestionFileError(f"{where}: an answerable question needs at least one evidence string")
    known = {"id", "question", "answerable", "doc", "evidence", "answer", "keywords", "type"}
    return Question(
        id=str(obj["id"]),
        question=obj["question"],
        answerable=obj["answerable"],
        docs=docs,
        evidence=obj.get("evidence", []),
        answer=str(obj.get("answer", "")),
        keywords=obj.get("keywords", []),
        type=qtype,
        extra={k: v for k, v in obj.items() if k not in known},
    )


def load_questions(path: Path) -> list[Question]:
    """Parse a JSONL question file; raise QuestionFileError naming the first bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: cannot read ({exc})") from exc
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        question = _parse(obj, where)
        if question.id in seen:
            raise QuestionFileError(f"{where}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise QuestionFileError(f"{path}: no questions")
    return questions


def check_against_corpus(questions: list[Question], corpus_dir: Path) -> list[str]:
    """Problems with a question set: evidence not verbatim in its file, keywords not in the evidence."""
    problems: list[str] = []
    texts: dict[str, str] = {}
    for q in questions:
        for doc in q.docs:
            if doc not in texts:
                path = corpus_dir / doc
                texts[doc] = path.read_text(encoding="utf-8") if path.exists() else ""
                if not texts[doc]:
                    problems.append(f"{q.id}: document {doc} not found in {corpus_dir}")
        for ev in q.evidence:
            if not any(ev in texts.get(doc, "") for doc in q.docs):
                problems.append(f"{q.id}: evidence not verbatim in {q.docs}: {ev!r}")
        joined = squash(" ".join(q.evidence))
        for kw in q.keywords:
            if squash(kw) not in joined:
                problems.append(f"{q.id}: keyword {kw!r} not in its evidence")
    return problems
