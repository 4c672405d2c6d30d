"""One loaded index shared by many threads (Streamlit sessions), and ingest swapping it underneath."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eval.data import load_questions
from eval.load import run_load
from ingest.pipeline import ingest
from rag.qa import PolicyQA
from rag.store import read_index
from tests.conftest import CORPUS, QUESTIONS


def _fingerprint(answer) -> tuple:
    return (answer.text, answer.abstained, tuple(c.chunk_id for c in answer.passages))


def test_concurrent_questions_give_the_same_answers_as_sequential(qa):
    questions = [q.question for q in load_questions(QUESTIONS)][:40]
    sequential = [_fingerprint(qa.ask(q)) for q in questions]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda q: _fingerprint(qa.ask(q)), questions * 2))
    assert concurrent == sequential * 2


def test_readers_see_the_old_or_the_new_index_never_a_mix(corpus_index, tmp_path: Path):
    root = tmp_path / "index"
    shutil.copytree(corpus_index, root)
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    before = len(read_index(root).nodes)
    stop = threading.Event()
    seen: set[int] = set()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                index = read_index(root)
                assert len(index.nodes) == index.dense.ntotal == index.manifest.counts["chunks"]
                seen.add(len(index.nodes))
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                problems.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(3):  # each ingest adds one small document and swaps the pointer
            (corpus / f"extra_{i}.txt").write_text(f"追加資料{i}。AI政策の検討状況について追記する。", encoding="utf-8")
            ingest([corpus], root, progress=False)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:3]
    assert seen and seen <= {before, before + 1, before + 2, before + 3}  # whole versions only
    assert len(read_index(root).nodes) == before + 3


def test_loaded_qa_keeps_answering_after_ingest_replaces_its_version(corpus_index, tmp_path: Path):
    root = tmp_path / "index"
    shutil.copytree(corpus_index, root)
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    qa = PolicyQA.load(root)
    for i in range(3):  # more swaps than old versions kept: the loaded files are long gone
        (corpus / f"extra_{i}.txt").write_text(f"追加資料{i}。AI政策の補足。", encoding="utf-8")
        ingest([corpus], root, progress=False)
    assert "2024年2月" in qa.ask("AISIはいつ設立されましたか？").text


def test_short_load_run_reports_no_errors(qa):
    questions = [q.question for q in load_questions(QUESTIONS)][:20]
    report = run_load(qa, questions, users=4, seconds=3, think_s=0.05)
    assert report.requests > 4 and not report.errors
    assert len(report.latencies_ms) == report.requests
    assert any("throughput" in line for line in report.lines())
