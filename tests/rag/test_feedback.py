"""The feedback log: one whole JSON line per rating, append-only, safe under concurrent writers."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor

import pytest

from rag.compose import Answer, Citation
from rag.feedback import append_feedback, feedback_record


def _answer() -> Answer:
    cite = Citation(1, "003.txt", "指針", "第1章", (3, 4), "前置き。根拠の文。", 4, 9, 0.5, "c1")
    return Answer("質問？", "質問？", "根拠の文。[1]", citations=[cite])


def _write_many(path: str, writer: int, count: int) -> None:
    from pathlib import Path

    for i in range(count):
        append_feedback(Path(path), {"writer": writer, "i": i, "pad": "あ" * 5000})


def test_record_carries_question_answer_and_cited_evidence():
    record = feedback_record(_answer(), "up", "  助かった ", answer_id="a1", k=5)
    assert record["rating"] == "up" and record["comment"] == "助かった"
    assert record["question"] == "質問？" and record["answer"] == "根拠の文。[1]"
    assert record["citations"][0]["evidence"] == "根拠の文。" and record["citations"][0]["lines"] == [3, 4]
    assert record["answer_id"] == "a1" and record["k"] == 5
    with pytest.raises(ValueError):
        feedback_record(_answer(), "meh")


def test_existing_lines_are_kept_and_new_ones_appended(tmp_path):
    path = tmp_path / "sub" / "feedback.jsonl"
    append_feedback(path, {"n": 1})
    before = path.read_bytes()
    append_feedback(path, {"n": 2})
    assert path.read_bytes().startswith(before)
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [1, 2]


def test_concurrent_writers_leave_every_line_whole(tmp_path):
    path = tmp_path / "feedback.jsonl"
    writers, count = 6, 40
    with ProcessPoolExecutor(max_workers=writers) as pool:
        list(pool.map(_write_many, [str(path)] * writers, range(writers), [count] * writers))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == writers * count
    assert {(r["writer"], r["i"]) for r in records} == {(w, i) for w in range(writers) for i in range(count)}
