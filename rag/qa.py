"""PolicyQA: the library entry point (retrieve passages, answer with citations or abstain)."""

from __future__ import annotations

import re
import time
import unicodedata
from pathlib import Path

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, TextNode

from rag.candidates import Candidate, candidates
from rag.compose import NOT_FOUND, Answer, Citation, choose, citation_for, cited_in_order, compose, reading_order, said
from rag.config import set_threads
from rag.decide import Decider, default_decider
from rag.embedders import load_embedder
from rag.features import FEATURES, FeatureBuilder
from rag.generate import LLMGenerator, TokenCallback
from rag.ground import check_answer
from rag.llm import LLMError
from rag.query import Turn, resolve_followup, split_asks
from rag.rerank import CrossEncoderReranker, LearnedRanker, reranker_from_env
from rag.retrieve import HybridRetriever, Retrieval
from rag.store import IndexLoadError, IndexSnapshot, Store, is_database_url, open_store
from rag.text import Tokenizer, default_tokenizer, has_japanese

MAX_QUESTION_CHARS = 2000
MIN_CROSS_LANGUAGE_COSINE = 0.86  # an English question is answered only by a sentence this close in meaning


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
    if not has_japanese(cleaned) and _looks_like_code(cleaned):
        raise QueryError("質問がプログラムやマークアップのように見えます。調べたい内容を言葉で入力してください。")
    return cleaned


_MARKUP = re.compile(r"<[^>]*>|&[a-z]+;|&#\d+;")
_SQL = re.compile(r"\b(?:select|insert|update|delete|drop|union|from|where|table|into|values)\b", re.IGNORECASE)
_CODE_SYMBOLS = set("<>{}[]();=;'\"`|&$\\/*-+#%")


def _looks_like_code(text: str) -> bool:
    """Markup, a script or an SQL string rather than a question: tags, or mostly code symbols between words."""
    words = re.findall(r"[A-Za-z]+", _MARKUP.sub(" ", text))
    symbols = sum(ch in _CODE_SYMBOLS for ch in text)
    sql = len(_SQL.findall(text)) >= 2 and any(ch in text for ch in ";=*'")
    return bool(_MARKUP.search(text)) or sql or symbols >= max(3, len(text.replace(" ", "")) * 0.15) or not words


class PolicyQA:
    """Hybrid retriever plus extractive, cited answers over one index. Safe to share across threads."""

    def __init__(
        self,
        index: IndexSnapshot,
        embedder: BaseEmbedding,
        tokenizer: Tokenizer | None = None,
        reranker: CrossEncoderReranker | None = None,
        decider: Decider | None = None,
        ranker: LearnedRanker | None = None,
    ) -> None:
        self.index = index
        self.tokenizer = tokenizer or default_tokenizer()
        self.retriever = HybridRetriever(index, embedder, self.tokenizer, reranker=reranker, ranker=ranker)
        self.idf = index.idf()
        self.features = FeatureBuilder(self.tokenizer, self.idf)
        self._decider = decider

    @property
    def decider(self) -> Decider:
        """The fitted answer decision (the shipped model unless one was given); loaded on first use."""
        if self._decider is None:
            self._decider = default_decider()
        return self._decider

    @classmethod
    def load(
        cls,
        index_dir: str | Path | None = None,
        embedder: BaseEmbedding | None = None,
        reranker: CrossEncoderReranker | None = None,
        store: str | Path | Store | None = None,
        decider: Decider | None = None,
        tuned_queries: bool | None = None,
        ranker: LearnedRanker | None = None,
    ) -> PolicyQA:
        """Load the live index version and the embedder it was built with.

        From `store` (a directory, a `postgresql://…` URL or a Store), else `index_dir`, else
        $SEISAKU_QA_STORE, else `./index` ($SEISAKU_QA_INDEX). A CrossEncoder `reranker` is
        used when given, or when $SEISAKU_QA_RERANKER names a model. `tuned_queries`: see `load_embedder`.
        `ranker`: the learned ranking model (default: the shipped one, `rag.rerank.default_ranker`).
        """
        if store is None and index_dir is not None:
            store = str(index_dir) if is_database_url(str(index_dir)) else Path(index_dir)
        index = open_store(store).read()
        set_threads("query")
        if embedder is None:
            embedder = load_embedder(index.manifest.embedder, tuned_queries)
        elif embedder.model_name != index.manifest.embedder or getattr(embedder, "dim", None) != index.manifest.dim:
            raise IndexLoadError(
                f"embedder {embedder.model_name} does not match the index (built with {index.manifest.embedder}): "
                f"run `rag ingest --rebuild --embedder ...`"
            )
        return cls(index, embedder, reranker=reranker or reranker_from_env(), decider=decider, ranker=ranker)

    def next_node(self, node: TextNode) -> TextNode | None:
        """The chunk that follows `node` in its document (neighbour expansion), if any."""
        following = node.next_node
        return self.index.node_by_id(following.node_id) if following else None

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

        A question with two asks is answered part by part; a part the documents do not
        answer says so. With `generator`, an LLM condenses follow-ups and writes the answer
        (streamed to `on_token`); if it fails, the extractive answer is returned with `notice` saying why.
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
        retrieval = self.retriever.retrieve_with_signals(query, max(k, 1), docs)
        hits = retrieval.hits
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
            parts = split_asks(query) if has_japanese(query) else [query]
            if len(parts) > 1:
                answer = self._by_parts(question, query, retrieval, parts, k, docs, passages)
            else:
                text, citations = self._answer_one(query, retrieval)
                answer = Answer(question, query, text, citations, passages=passages, abstained=not citations)
            answer.notice = notice
        if answer.abstained:
            answer.text, answer.citations, answer.related = NOT_FOUND, [], passages[:3]
        else:
            cited = {c.n: c.text for c in answer.citations}
            answer.checks = check_answer(answer.text, cited, self.tokenizer, self.similarity)
        answer.timings_ms = {"retrieve": (t1 - t0) * 1000, "answer": (time.perf_counter() - t1) * 1000}
        return answer

    def read(self, query: str, retrieval: Retrieval) -> tuple[list[Candidate], np.ndarray]:
        """The candidate sentences of the retrieved passages and their feature rows (what the decision reads)."""
        cands = candidates(retrieval.hits, retrieval.signals, self.next_node)
        sentences_of = self.index.sentences_of(c.node.node_id for c in cands)  # (start, end, vector row)
        rows_of = [
            [row for s, e, row in sentences_of[c.node.node_id] if s < c.span[1] and c.span[0] < e] for c in cands
        ]
        wanted = sorted({row for rows in rows_of for row in rows})
        # one fetch of every candidate's sentence vectors (a database store serves them by row)
        cosine_of = dict(zip(wanted, retrieval.sentence_cosines(wanted).tolist()))
        by_cand = {id(c): max((cosine_of[r] for r in rows), default=0.0) for c, rows in zip(cands, rows_of)}

        def cosine(cand: Candidate) -> float:
            return by_cand[id(cand)]

        return cands, self.features.build(query, cands, retrieval, cosine)

    def _answer_one(self, query: str, retrieval: Retrieval) -> tuple[str, list[Citation]]:
        """(text, citations) for one ask, or ("", []) when no candidate is likely enough to answer it."""
        cands, rows = self.read(query, retrieval)
        if not has_japanese(query):  # no shared words: the closest sentence in meaning, if close enough
            cosines = rows[:, FEATURES.index("sentence_cosine")] if len(rows) else np.zeros(0)
            if not len(cosines) or cosines.max() < MIN_CROSS_LANGUAGE_COSINE:
                return "", []
            return compose(cands, cosines, MIN_CROSS_LANGUAGE_COSINE)
        probabilities = self.decider.probabilities(rows)
        if not self.decider.answers(probabilities, rows, query):
            return "", []
        return compose(cands, probabilities, self.decider.sentence_threshold)

    def _by_parts(
        self,
        question: str,
        query: str,
        retrieval: Retrieval,
        parts: list[str],
        k: int,
        docs: list[str] | None,
        passages: list[Citation],
    ) -> Answer:
        """The whole question's answer, plus each ask's own best sentence where that answer lacks it.

        An ask the decision does not answer is said to be missing, unless the sentence
        it would pick for that ask is already quoted and likely enough to join an
        answer (one sentence often answers both asks, and an ask read alone often lacks
        its topic); the answer to the whole question is kept, so splitting never loses
        what it said.
        """
        cands, rows = self.read(query, retrieval)
        probabilities = self.decider.probabilities(rows)
        whole = self.decider.answers(probabilities, rows, query)
        chosen = reading_order(choose(cands, probabilities, self.decider.sentence_threshold)) if whole else []
        unanswered: list[tuple[str, Candidate | None]] = []  # (ask, the sentence it would pick, if likely enough)
        for part in parts:
            cands, rows = self.read(part, self.retriever.retrieve_with_signals(part, max(k, 1), docs))
            probabilities = self.decider.probabilities(rows)
            best = cands[int(np.argmax(probabilities))] if len(probabilities) else None
            if best is None or not self.decider.answers(probabilities, rows, part):
                likely = best is not None and probabilities.max() >= self.decider.sentence_threshold
                unanswered.append((part, best if likely else None))
            elif not said(best, chosen):
                chosen.append(best)
        missing = [part for part, best in unanswered if best is None or not said(best, chosen)]
        if not chosen:
            return Answer(question, query, "", [], passages=passages, abstained=True)
        text, citations = cited_in_order(chosen)
        text += "".join(f"\n「{part.rstrip('？?')}」については{NOT_FOUND}" for part in missing)
        return Answer(question, query, text, citations, passages=passages)

    def similarity(self, sentence: str, sentences: list[str]) -> float:
        """Highest cosine between `sentence` and the passage sentences (the grounding paraphrase fallback)."""
        vectors = np.asarray(self.retriever.embedder.get_text_embedding_batch([sentence, *sentences]))
        return float((vectors[1:] @ vectors[0]).max())
