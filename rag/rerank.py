"""Optional CrossEncoder reranking of the fused candidates (sentence-transformers).

Off by default: no Japanese cross-encoder ships inside a PyPI package, so a
user configures one (`SEISAKU_QA_RERANKER=<model path or hub name>`, or
`PolicyQA.load(reranker=...)`). It re-scores the top RERANK_CANDIDATES fused
passages against the query and reorders them; the fused ranking stays the
fallback order for ties.
"""

from __future__ import annotations

import os
import threading

from llama_index.core.schema import NodeWithScore

from rag.embedders import EmbedderError

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
