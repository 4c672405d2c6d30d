"""Approximate (HNSW) search in the embedded store, used above a size threshold: close to exact, same interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import rag.store.faiss as faiss_store
from eval.data import load_questions
from rag.qa import PolicyQA
from rag.store import read_index, write_index
from tests.conftest import QUESTIONS


def test_hnsw_index_ranks_like_the_exact_one(corpus_index, faiss_qa, tmp_path: Path, monkeypatch):
    stored = read_index(corpus_index)
    monkeypatch.setattr(faiss_store, "HNSW_MIN_VECTORS", 0)
    vectors, sentence_vectors = stored.vectors(), stored.sentence_vectors()
    write_index(tmp_path, stored.manifest, stored.nodes, vectors, stored.bm25, sentence_vectors, stored.latent)
    approximate = PolicyQA.load(tmp_path, embedder=faiss_qa.retriever.embedder)
    assert approximate.index.approximate and not faiss_qa.index.approximate
    questions = [q.question for q in load_questions(QUESTIONS)][:40]
    overlap = [
        len(
            {h.node.node_id for h in approximate.retrieve(q, k=10)}
            & {h.node.node_id for h in faiss_qa.retrieve(q, k=10)}
        )
        / 10
        for q in questions
    ]
    assert np.mean(overlap) >= 0.95
    doc = "003_85d7ebae2a956e44.txt"  # a document filter is ranked exactly
    hits = approximate.retrieve("AIガバナンス", k=5, docs=[doc])
    assert [h.node.node_id for h in hits] == [
        h.node.node_id for h in faiss_qa.retrieve("AIガバナンス", k=5, docs=[doc])
    ]
