"""PolicyQA: the library entry point (retrieve passages, answer with citations or abstain)."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, TextNode

from rag.abstain import AbstainPolicy, SupportMeter
from rag.answer import (
    NOT_FOUND,
    Answer,
    Citation,
    ExtractiveComposer,
    SentenceSimilarity,
    citation_for,
)
from rag.embedders import load_embedder
from rag.followup import Turn, resolve_followup
from rag.generate import LLMGenerator, TokenCallback
from rag.ground import check_answer
from rag.llm import LLMError
from rag.outline import OutlineAnswerer
from rag.rerank import CrossEncoderReranker, reranker_from_env
from rag.retrieve import HybridRetriever
from rag.store import IndexLoadError, IndexSnapshot, Store, is_database_url, open_store
from rag.synonyms import default_synonyms
from rag.text import Tokenizer, default_tokenizer, has_japanese
from rag.threads import set_threads

MAX_QUESTION_CHARS = 2000


class QueryError(ValueError):
    """The question cannot be searched as given; the message is shown to the user."""


def validate_question(question: str) -> str:
    """Strip control characters; reject empty, symbol-only and over-long questions with a clear message."""
    if not isinstance(question, str):
        raise QueryError("質問は文字列で入力してください。")
    cleaned = "".join(ch for ch in question if unicodedata.category(ch)[0] != "C" or ch in "\n\t").strip()
    if not cleaned:
        raise QueryError("質問が空です。調べたい内容を入力してください。")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise QueryError(
            f"質問が長すぎます（{len(cleaned):,} 文字）。{MAX_QUESTION_CHARS:,} 文字以内で入力してください。"
        )
    if not any(unicodedata.category(ch)[0] in "LN" for ch in cleaned):
        raise QueryError("質問に文字が含まれていません。言葉で質問を入力してください。")
    return cleaned


class PolicyQA:
    """Hybrid retriever plus extractive, cited answers over one index. Safe to share across threads."""

    def __init__(
        self,
        index: IndexSnapshot,
        embedder: BaseEmbedding,
        tokenizer: Tokenizer | None = None,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.index = index
        self.tokenizer = tokenizer or default_tokenizer()
        self.retriever = HybridRetriever(index, embedder, self.tokenizer, reranker=reranker)
        self.idf = index.idf()
        self._node_by_id = {node.node_id: node for node in index.nodes}
        self._sentences_of: dict[str, list[tuple[int, int, int]]] = {}  # node id -> (start, end, vector row)
        for row, (node_row, start, end) in enumerate(index.sentence_spans):
            self._sentences_of.setdefault(index.nodes[node_row].node_id, []).append((start, end, row))
        self.composer = ExtractiveComposer(self.tokenizer, self.idf, next_node=self.next_node)
        self.abstain_policy = AbstainPolicy()
        self.support = SupportMeter(self.idf, self.tokenizer, default_synonyms())
        self.outline = OutlineAnswerer(index.nodes, self.tokenizer)

    @classmethod
    def load(
        cls,
        index_dir: str | Path | None = None,
        embedder: BaseEmbedding | None = None,
        reranker: CrossEncoderReranker | None = None,
        store: str | Path | Store | None = None,
    ) -> PolicyQA:
        """Load the live index version and the embedder it was built with.

        From `store` (a directory, a `postgresql://…` URL or a Store), else `index_dir`, else
        $SEISAKU_QA_STORE, else `./index` ($SEISAKU_QA_INDEX). A CrossEncoder `reranker` is
        used when given, or when $SEISAKU_QA_RERANKER names a model.
        """
        if store is None and index_dir is not None:
            store = str(index_dir) if is_database_url(str(index_dir)) else Path(index_dir)
        index = open_store(store).read()
        set_threads("query")
        if embedder is None:
            embedder = load_embedder(index.manifest.embedder)
        elif embedder.model_name != index.manifest.embedder or getattr(embedder, "dim", None) != index.manifest.dim:
            raise IndexLoadError(
                f"embedder {embedder.model_name} does not match the index (built with {index.manifest.embedder}): "
                f"run `rag ingest --rebuild --embedder ...`"
            )
        return cls(index, embedder, reranker=reranker or reranker_from_env())

    def next_node(self, node: TextNode) -> TextNode | None:
        """The chunk that follows `node` in its document (neighbour expansion), if any."""
        following = node.next_node
        return self._node_by_id.get(following.node_id) if following else None

    @property
    def documents(self) -> dict[str, str]:
        """File name → title of every indexed document."""
        return {name: info.get("title", name) for name, info in self.index.manifest.files.items()}

    def retrieve(self, question: str, k: int = 5, docs: list[str] | None = None) -> list[NodeWithScore]:
        return self.retriever.search(validate_question(question), k, docs)

    def ask(
        self,
        question: str,
        history: list[Turn] | None = None,
        k: int = 5,
        docs: list[str] | None = None,
        generator: LLMGenerator | None = None,
        on_token: TokenCallback | None = None,
    ) -> Answer:
        """Answer from the documents with [n] citations, or abstain with the closest passages as related.

        With `generator`, an LLM condenses follow-ups and writes the answer (streamed to `on_token`);
        if it fails, the extractive answer is returned with `notice` saying why.
        """
        question = validate_question(question)
        t0 = time.perf_counter()
        notice = ""
        query = resolve_followup(question, history or [], self.tokenizer)
        if generator and history and query != question:
            try:
                query = validate_question(generator.condense(question, history))
            except (LLMError, QueryError) as exc:
                notice = str(exc)
        hits = self.retriever.search(query, max(k, 1), docs)
        t1 = time.perf_counter()
        passages = [citation_for(hit, i + 1) for i, hit in enumerate(hits)]
        answer = None
        if generator and not notice:
            try:
                text, citations = generator.compose(query, hits, on_token)
                answer = Answer(question, query, text, citations, passages=passages, generator=generator.name)
                answer.abstained = not citations
            except LLMError as exc:
                notice = str(exc)
        if answer is None:
            answer = self._extractive(question, query, hits, passages)
            answer.notice = notice
        if answer.abstained:
            answer.text, answer.citations, answer.related = NOT_FOUND, [], passages[:3]
        else:
            cited = {c.n: c.text for c in answer.citations}
            answer.checks = check_answer(answer.text, cited, self.tokenizer, self.similarity)
        answer.timings_ms = {"retrieve": (t1 - t0) * 1000, "answer": (time.perf_counter() - t1) * 1000}
        return answer

    def _extractive(self, question: str, query: str, hits: list[NodeWithScore], passages: list[Citation]) -> Answer:
        """The offline answer, abstaining when the cited sentences do not cover the question.

        A question with no Japanese in it shares no words with the corpus, so its
        sentences are chosen, and the answer kept, by embedding similarity instead.
        """
        if not has_japanese(query):
            return self._by_meaning(question, query, hits, passages)
        listed = self.outline.answer(query, hits[: self.composer.passages])
        if listed:  # 「N つの…」 answered by the document's own list of exactly N items
            return Answer(question, query, listed[0], listed[1], passages=passages)
        text, citations = self.composer.compose(query, hits)
        defined = {h.node.node_id: h.node.metadata.get("defines", "") for h in hits}  # footnote terms count
        support_texts = [f"{defined.get(c.chunk_id, '')} {c.text}" for c in citations]
        support = self.support.measure(query, support_texts, [c.evidence for c in citations])
        answer = Answer(question, query, text, citations, passages=passages)
        answer.abstained = not citations or self.abstain_policy.abstain(support)
        return answer

    def _by_meaning(self, question: str, query: str, hits: list[NodeWithScore], passages: list[Citation]) -> Answer:
        """Sentences chosen by embedding similarity; kept only if one is close enough in meaning."""
        meaning = self.meaning(query)
        text, citations = self.composer.compose(query, hits, meaning)
        answer = Answer(question, query, text, citations, passages=passages)
        closest = max(
            (meaning(self._node_by_id[c.chunk_id], c.evidence_start, c.evidence_end) for c in citations), default=0.0
        )
        answer.abstained = not citations or closest < self.abstain_policy.min_similarity
        return answer

    def meaning(self, query: str) -> SentenceSimilarity:
        """Cosine of `query` to the best stored sentence vector inside a span of a node."""
        vector = self.retriever.query_vector(query)
        vectors = self.retriever.sentence_vectors

        def similarity(node: TextNode, start: int, end: int) -> float:
            rows = [row for s, e, row in self._sentences_of.get(node.node_id, []) if s < end and start < e]
            return float((vectors[rows] @ vector).max()) if rows else 0.0

        return similarity

    def similarity(self, sentence: str, candidates: list[str]) -> float:
        """Highest cosine between `sentence` and the candidate sentences (the grounding paraphrase fallback)."""
        vectors = np.asarray(self.retriever.embedder.get_text_embedding_batch([sentence, *candidates]))
        return float((vectors[1:] @ vectors[0]).max())
