"""`rag bench` store rows: the scaled index written into each store and served by a fresh process."""

from __future__ import annotations

from pathlib import Path

from eval.bench import approximate_rows
from eval.data import load_questions
from rag.store import open_store
from tests.conftest import QUESTIONS


def test_store_rows_include_pgvector_served_from_its_own_process(corpus_index, pg_database, tmp_path: Path):
    open_store(pg_database).init_schema()
    questions = [q.question for q in load_questions(QUESTIONS)][:5]
    lines = approximate_rows(corpus_index, tmp_path, [2], questions, pg_database, ("faiss flat", "pgvector"))
    assert len(lines) == 3
    for label in ("faiss flat", "pgvector"):
        scale, chunks, _build, _disk, rss, *_, recall = next(x for x in lines if label in x).replace(label, "").split()
        assert (scale, chunks) == ("2", "488")  # two copies of the 244 chunks
        assert float(rss) > 100  # MiB: a fresh process holding the embedder and the index
        assert float(recall) >= 0.9  # fused recall@10 against exact search
    assert open_store(pg_database).read().manifest.counts["chunks"] == 488
    assert not list(tmp_path.glob("scaled_*"))  # the FAISS copies are removed
