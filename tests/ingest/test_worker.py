"""Ingest over the job queue on a real PostgreSQL: workers in separate processes, one killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ingest.pipeline import ingest
from rag.store.pg_queue import JobQueue
from rag.store.postgres import PostgresStore
from tests.conftest import ROOT
from tests.rag.test_pg_store import NEW_DOC

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def _doc(topic: str, sentences: int) -> str:
    lines = [f"# {topic}に関する基本方針", ""]
    for i in range(sentences):
        if i % 12 == 0:
            lines += ["", f"## 第{i // 12 + 1}節 {topic}の推進体制", ""]
        lines.append(
            f"{topic}の第{i + 1}施策として、関係府省は{2030 + i % 7}年度までに計画{i + 1}号を策定し、進捗を公表する。"
        )
    return "\n".join(lines) + "\n"


def _rag(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )


CACHED = "SELECT (SELECT count(*) FROM embeddings) + (SELECT count(*) FROM latent_vectors)"  # what jobs count


def _count(store: PostgresStore, query: str, params: tuple = ()) -> int:
    return store.run(lambda conn: conn.execute(query, params).fetchone()[0])


def test_two_workers_ingest_a_batch_with_nothing_lost_or_embedded_twice(pg_database, tmp_path: Path):
    store = PostgresStore(pg_database)
    store.init_schema()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = []
    for i, topic in enumerate(["量子技術", "半導体", "宇宙開発", "海洋資源"]):
        names.append(f"{i:03d}_{topic}.txt")
        (corpus / names[-1]).write_text(_doc(topic, 30), encoding="utf-8")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    queued = _rag("ingest", str(corpus), "--store", pg_database, "--enqueue")
    assert queued.returncode == 0, queued.stderr[-2000:]
    assert "5 documents queued" in queued.stdout
    assert store.current() is None  # nothing is live until the batch is drained and published

    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "worker", "--store", pg_database, "--idle-exit", "--lease", "30"],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in outputs]
    said = "\n".join(out for out, _ in outputs)
    assert said.count("live as version") == 1 and "0 chunks embedded at publish" in said
    assert "broken.pdf: skipped" in said

    snapshot = store.read()
    assert sorted(snapshot.manifest.files) == sorted(names)
    assert "broken.pdf" in snapshot.manifest.skipped
    jobs = store.run(
        lambda conn: conn.execute("SELECT name, state, attempts, worker, embedded FROM ingest_jobs").fetchall()
    )
    assert sorted(name for name, *_ in jobs) == sorted([*names, "broken.pdf"])
    assert all(attempts == 1 for _, _, attempts, _, _ in jobs)  # each claimed once: SKIP LOCKED, no double work
    assert {state for name, state, *_ in jobs if name != "broken.pdf"} == {"done"}
    # every cached vector was computed by exactly one job (a fresh database: nothing came from elsewhere)
    embedded = sum(e or 0 for *_, e in jobs)
    cached = _count(store, CACHED)
    assert embedded == cached > _count(store, "SELECT count(*) FROM embeddings") > 0  # latent terms cached too
    status = _rag("ingest", "--status", "--store", pg_database)
    assert status.returncode == 0 and ": live, 5/5 documents, 1 failed" in status.stdout, status.stdout
    store.close()


def test_a_worker_killed_mid_job_leaves_the_previous_version_and_the_rerun_reuses_its_vectors(
    pg_database, tmp_path: Path
):
    store = PostgresStore(pg_database)
    store.init_schema()
    first = tmp_path / "first"
    first.mkdir()
    (first / "900_quantum.txt").write_text(NEW_DOC, encoding="utf-8")
    ingest([first], pg_database, progress=False)
    previous = store.current()

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "900_quantum.txt").write_text(NEW_DOC, encoding="utf-8")
    (corpus / "910_semiconductor.txt").write_text(_doc("半導体", 420), encoding="utf-8")
    JobQueue(store).enqueue([(p.name, p.read_bytes()) for p in sorted(corpus.iterdir())])
    before = _count(store, CACHED)

    victim = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "worker", "--store", pg_database, "--lease", "4"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while _count(store, CACHED) < before + 256:  # its first batch of vectors is in
            assert victim.poll() is None and time.time() < deadline, "the worker ended before it was killed"
            time.sleep(0.2)
        running = "SELECT count(*) FROM ingest_jobs WHERE name = '910_semiconductor.txt' AND state = 'running'"
        assert _count(store, running) == 1
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    stored_by_victim = _count(store, CACHED) - before
    assert store.current() == previous  # still serving the previous version
    assert store.read().manifest.files.keys() == {"900_quantum.txt"}

    time.sleep(5)  # past the dead worker's lease
    rerun = _rag("worker", "--store", pg_database, "--idle-exit", "--lease", "4")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "attempt 2" in rerun.stdout and "live as version" in rerun.stdout
    assert store.current() != previous
    assert set(store.read().manifest.files) == {"900_quantum.txt", "910_semiconductor.txt"}
    chunks, embedded, attempts = store.run(
        lambda conn: conn.execute(
            "SELECT chunks, embedded, attempts FROM ingest_jobs WHERE name = '910_semiconductor.txt'"
        ).fetchone()
    )
    assert attempts == 2
    total = _count(store, CACHED) - before
    assert embedded == total - stored_by_victim  # the rerun embedded only what the killed worker had not stored
    assert stored_by_victim >= 256 and embedded < total
    store.close()


def test_enqueue_needs_the_database_store(tmp_path: Path):
    (tmp_path / "a.txt").write_text(NEW_DOC, encoding="utf-8")
    result = _rag("ingest", str(tmp_path), "--index", str(tmp_path / "index"), "--enqueue")
    assert result.returncode == 2
    assert "job queue lives in the PostgreSQL store" in result.stderr
