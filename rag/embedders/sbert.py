"""Any sentence-transformers model by local path or hub name (hub names need network access)."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr

# Prompt names models declare for the two roles, in order of preference.
_QUERY_PROMPTS = ("query",)
_PASSAGE_PROMPTS = ("passage", "document", "doc")


class SentenceTransformerEmbedding(BaseEmbedding):
    """Uses the query/passage prompts the model declares; e5 models get `query: `/`passage: `."""

    _model: Any = PrivateAttr()
    _query_prefix: str = PrivateAttr(default="")
    _passage_prefix: str = PrivateAttr(default="")

    def __init__(self, model: str, device: str = "cpu", **kwargs: Any) -> None:
        from sentence_transformers import SentenceTransformer

        kwargs.setdefault("model_name", f"st:{model}")
        super().__init__(**kwargs)
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as exc:  # noqa: BLE001 - any load failure means the same to the user
            from rag.embedders import EmbedderError

            raise EmbedderError(f"cannot load sentence-transformers model {model!r}: {exc}") from exc
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prefix = next((prompts[k] for k in _QUERY_PROMPTS if k in prompts), "")
        self._passage_prefix = next((prompts[k] for k in _PASSAGE_PROMPTS if k in prompts), "")
        if not prompts and "e5" in model.lower():
            self._query_prefix, self._passage_prefix = "query: ", "passage: "

    @property
    def dim(self) -> int:
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(get_dim())

    def _encode(self, texts: list[str], prefix: str) -> list[Embedding]:
        vectors = self._model.encode([prefix + t for t in texts], normalize_embeddings=True)
        return vectors.tolist()

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encode([query], self._query_prefix)[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encode([text], self._passage_prefix)[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encode(texts, self._passage_prefix)
