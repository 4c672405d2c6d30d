"""Answer feedback (👍/👎 and a comment) as an append-only JSONL log that evaluators can mine."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from rag.compose import Answer

RATINGS = ("up", "down")
_PASSAGE_KEYS = {"text", "evidence_start", "evidence_end"}  # the evidence itself is kept; lines stay short


def feedback_record(answer: Answer, rating: str, comment: str = "", **context: Any) -> dict[str, Any]:
    """One log line: the rating with the question, the answer and what it cited."""
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
    cited = answer.related if answer.abstained else answer.citations
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rating": rating,
        "comment": comment.strip(),
        "question": answer.question,
        "query": answer.query,
        "answer": answer.text,
        "abstained": answer.abstained,
        "generator": answer.generator,
        "notice": answer.notice,
        "unsupported": [check.sentence for check in answer.unsupported],
        "citations": [
            {key: value for key, value in cite.to_dict().items() if key not in _PASSAGE_KEYS} for cite in cited
        ],
        **context,
    }


def append_feedback(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line. O_APPEND plus an exclusive lock keeps lines whole under concurrent writers;
    existing lines are never rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
