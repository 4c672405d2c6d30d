"""The sparse side of the hybrid index: fugashi content words per chunk, and BM25 over them."""

from __future__ import annotations

import bm25s
from llama_index.core.schema import TextNode

from ingest.split import search_text
from rag.store import bm25_from_terms
from rag.text import Tokenizer


def corpus_terms(nodes: list[TextNode], tokenizer: Tokenizer) -> list[list[str]]:
    """Each chunk's content-word terms, as the store ranks them lexically."""
    return [tokenizer.terms(search_text(n)) for n in nodes]


def build_bm25(nodes: list[TextNode], tokenizer: Tokenizer) -> bm25s.BM25:
    return bm25_from_terms(corpus_terms(nodes, tokenizer))
