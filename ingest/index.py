"""Build the sparse (BM25 over fugashi content words) side of the hybrid index."""

from __future__ import annotations

import logging

import bm25s
from llama_index.core.schema import TextNode

from ingest.split import search_text
from rag.text import Tokenizer

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG


def build_bm25(nodes: list[TextNode], tokenizer: Tokenizer) -> bm25s.BM25:
    corpus_terms = [tokenizer.terms(search_text(n)) or ["\u0000"] for n in nodes]
    bm25 = bm25s.BM25()
    bm25.index(corpus_terms, show_progress=False)
    return bm25
