"""Reranking the candidates the store's rankings found: a fitted ranker (default) and an optional CrossEncoder.

The learned ranker orders the union of each ranking's top RANK_DEPTH chunks by a
LightGBM lambdarank model over what the rankings said of each (score, rank, gap to
the ranking's top, the reciprocal-rank fusion score and rank). Fusion by fixed
weights was tuned on our first questions; fitted on the users'-style questions of
the blind sets as well (`rag train`, folds grouped by document), the learned order
ranks paraphrased questions' evidence higher on documents it was not fitted on
(README, "What moved the figures"). It reads only the rankings' scores, so it costs
well under a millisecond and works the same over both stores.

The CrossEncoder is off by default: no Japanese cross-encoder ships inside a PyPI
package, so a user configures one (`SEISAKU_QA_RERANKER=<model path or hub name>`,
or `PolicyQA.load(reranker=...)`). It re-scores the top RERANK_CANDIDATES
passages against the query and reorders them.
"""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.schema import NodeWithScore

from rag.embedders import EmbedderError
from rag.store import Rankings

MODEL_DIR = Path(__file__).parent / "models"
RANKER_FILE = MODEL_DIR / "ranker.txt"  # LightGBM lambdarank text model over RANK_FEATURES
RANKER_CARD = MODEL_DIR / "ranker.json"  # features, parameters, training data and cross-validated figures
RANK_DEPTH = 30  # each ranking's top chunks that compete (their union holds the evidence for 0.98 of questions)
RANK_FEATURES = (
    "chunk_cosine", "sentence_cosine", "bm25", "latent",
    "chunk_rank", "sentence_rank", "bm25_rank", "latent_rank",
    "chunk_gap", "sentence_gap", "bm25_share", "latent_share",
    "fused", "fused_rank", "query_terms", "top_bm25", "top_sentence_cosine",
)  # fmt: skip
RANK_PARAMS = {
    "objective": "lambdarank",
    "lambdarank_truncation_level": 10,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
}
RANK_ROUNDS = 300


class RankerError(RuntimeError):
    """The shipped ranking model is missing, unreadable or was fitted on other features."""


def rank_candidates(rankings: Rankings, depth: int = RANK_DEPTH) -> list[int]:
    """The union of each ranking's top `depth` rows, in order of first appearance."""
    rows: list[int] = []
    for ranking in (rankings.chunk, rankings.sentence, rankings.lexical, rankings.latent):
        if ranking is not None:
            rows.extend(int(r) for r in ranking.rows[:depth])
    return list(dict.fromkeys(rows))


def rank_features(
    rankings: Rankings,
    rows: list[int],
    exact: dict[int, tuple[float, float, float]],
    fused: np.ndarray,
    query_terms: int,
    unranked: int,
) -> np.ndarray:
    """One RANK_FEATURES row per candidate row. `exact`: row -> (chunk cosine, sentence cosine, BM25) from
    the store; `fused`: the RRF score of every row; `unranked`: the rank given where a ranking did not reach."""
    views = (rankings.chunk, rankings.sentence, rankings.lexical, rankings.latent)
    tops = [_stable(float(v.scores[0])) if v is not None and len(v) else 0.0 for v in views]
    ranks = np.full((len(rows), 4), unranked, dtype=np.float32)
    latent = np.zeros(len(rows), dtype=np.float32)
    for which, view in enumerate(views):
        if view is None:
            continue
        position = {int(r): i for i, r in enumerate(view.rows)}
        for i, row in enumerate(rows):
            if row in position:
                ranks[i, which] = position[row]
                if which == 3:
                    latent[i] = _stable(float(view.scores[position[row]]))
    scores = np.array(
        [[_stable(s) for s in exact.get(row, (0.0, 0.0, 0.0))] for row in rows], dtype=np.float32
    ).reshape(len(rows), 3)
    fused_of = fused[rows] if rows else np.zeros(0)
    fused_rank = np.empty(len(rows), dtype=np.float32)
    fused_rank[np.argsort(-fused_of, kind="stable")] = np.arange(len(rows))
    out = np.column_stack(
        [
            scores,
            latent,
            ranks,
            scores[:, 0] - tops[0],
            scores[:, 1] - tops[1],
            scores[:, 2] / (tops[2] or 1.0),
            latent / (tops[3] or 1.0),
            fused_of,
            fused_rank,
            np.full(len(rows), query_terms),
            np.full(len(rows), tops[2]),
            np.full(len(rows), tops[1]),
        ]
    )
    return out.astype(np.float32).reshape(len(rows), len(RANK_FEATURES))


def _stable(score: float) -> float:
    """A store's score to 4 decimals: pgvector's and FAISS's float32 cosines differ in the 7th digit, and
    a tree threshold between them would order the two stores' hits differently."""
    return round(score, 4)


class LearnedRanker:
    """The fitted ranking model; `scores` is higher for chunks likelier to hold the answer. Thread-safe."""

    def __init__(self, booster: Any, card: dict | None = None) -> None:
        self.booster = booster
        self.card = card or {}

    @classmethod
    def load(cls, model_file: Path = RANKER_FILE, card_file: Path = RANKER_CARD) -> LearnedRanker:
        import lightgbm

        try:
            card = json.loads(card_file.read_text(encoding="utf-8"))
            booster = lightgbm.Booster(model_file=str(model_file))
        except (OSError, ValueError, lightgbm.basic.LightGBMError) as exc:
            raise RankerError(f"ranking model unreadable ({exc}): run `rag train`") from exc
        if tuple(card.get("features", ())) != RANK_FEATURES:
            raise RankerError("ranking model was fitted on other features: run `rag train`")
        return cls(booster, card)

    def scores(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)


def fit_ranker(features: np.ndarray, labels: np.ndarray, group_sizes: list[int]) -> Any:
    """A lambdarank booster over candidate rows, one group per question; deterministic (one thread, fixed seed)."""
    import lightgbm

    data = lightgbm.Dataset(features, label=labels, group=group_sizes, feature_name=list(RANK_FEATURES))
    return lightgbm.train(RANK_PARAMS, data, num_boost_round=RANK_ROUNDS)


@lru_cache(maxsize=1)
def default_ranker() -> LearnedRanker | None:
    """The shipped ranking model, loaded once per process; None (fusion by fixed weights) when
    $SEISAKU_QA_LEARNED_RANKING=0."""
    if os.environ.get("SEISAKU_QA_LEARNED_RANKING", "1").strip().lower() in ("0", "false", "off", "no"):
        return None
    return LearnedRanker.load()


RERANK_CANDIDATES = 20


class CrossEncoderReranker:
    """Wraps `sentence_transformers.CrossEncoder`; safe to share across threads (predict is locked)."""

    def __init__(self, model: str, max_length: int = 512) -> None:
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(model, max_length=max_length, device="cpu")
        except Exception as exc:  # noqa: BLE001 - any load failure gets the same advice
            raise EmbedderError(f"cannot load reranker {model!r} ({type(exc).__name__}: {exc})") from exc
        self.name = model
        self._lock = threading.Lock()

    def rerank(self, query: str, hits: list[NodeWithScore], k: int) -> list[NodeWithScore]:
        """The top-k of `hits[:RERANK_CANDIDATES]` by cross-encoder score (the score replaces the fused one)."""
        head = hits[:RERANK_CANDIDATES]
        if not head:
            return []
        pairs = [(query, hit.node.get_content()) for hit in head]
        with self._lock:
            scores = self.model.predict(pairs, show_progress_bar=False)
        order = sorted(range(len(head)), key=lambda i: (-float(scores[i]), i))
        return [NodeWithScore(node=head[i].node, score=float(scores[i])) for i in order[:k]]


def reranker_from_env() -> CrossEncoderReranker | None:
    model = os.environ.get("SEISAKU_QA_RERANKER", "")
    return CrossEncoderReranker(model) if model else None
