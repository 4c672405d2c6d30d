"""Retrieval over the real index, and the llama-index adapter."""

from __future__ import annotations

import numpy as np
import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText

from eval.data import load_questions
from eval.metrics import recall_at_k
from tests.conftest import QUESTIONS, both_stores


@pytest.fixture(params=["faiss", "postgres"], scope="module")
def qa(request):
    return both_stores(request)


def retrieved(qa, question: str, k: int = 5, docs=None) -> list[dict]:
    return [
        {"doc": h.node.metadata["doc"], "text": h.node.get_content()} for h in qa.retrieve(question, k=k, docs=docs)
    ]


def test_eval_set_evidence_is_retrieved_for_most_questions(qa):
    questions = [q for q in load_questions(QUESTIONS) if q.answerable]
    found = [recall_at_k(retrieved(qa, q.question), q.evidence, q.docs, 5) for q in questions]
    assert sum(found) / len(found) >= 0.85


def test_sentence_score_is_the_best_sentence_of_each_chunk(faiss_qa):
    qa = faiss_qa  # the database store does not hold every score in process
    from rag.store import node_sentences
    from rag.text import sentence_spans

    retriever = qa.retriever
    vector = retriever.query_vector("事業継続計画をあらかじめ策定する")
    scores = qa.index.sentence_scores(vector)
    best = int(np.argmax(scores))
    text = qa.index.nodes[best].get_content()
    assert any("事業継続計画をあらかじめ策定する" in text[s:e] for s, e in sentence_spans(text))
    rows = [row for row, _, _ in node_sentences(qa.index.nodes)]
    own = qa.index.sentence_vectors()[[i for i, row in enumerate(rows) if row == best]] @ vector
    assert scores[best] == pytest.approx(float(own.max()), abs=1e-5)
    assert scores[best] > float(qa.index.dense_scores(vector)[best])  # one sentence is a sharper match


@pytest.mark.parametrize(
    ("question", "doc", "needle"),
    [
        ("AI法はいつ全面施行された？", "001_0ea924fc1fedfcee.txt", "全面施行された"),
        ("AISI", "001_0ea924fc1fedfcee.txt", "AISI"),
        ("事業継続計画", "003_85d7ebae2a956e44.txt", "事業継続計画をあらかじめ策定する"),
        ("When was the EU AI Act enacted?", "000_eef5b314d8d39818.txt", "AI Act が発効"),
        ("人工知能戦略専門調査会の座長は誰？", "002_899c488193c17f37.txt", "座長 松尾 豊"),
    ],
)
def test_short_english_and_japanese_queries_find_the_passage(qa, question, doc, needle):
    hits = retrieved(qa, question, k=5)
    assert any(h["doc"] == doc and needle in h["text"] for h in hits)


def test_document_filter_restricts_results(qa):
    hits = retrieved(qa, "AIガバナンス", k=8, docs=["003_85d7ebae2a956e44.txt"])
    assert hits and all(h["doc"] == "003_85d7ebae2a956e44.txt" for h in hits)


def test_query_normalization_matches_ingest(qa):
    a = [h["text"] for h in retrieved(qa, "Ａ Ｉ法の目的")]
    b = [h["text"] for h in retrieved(qa, "AI法の目的")]
    assert a == b


def test_retriever_works_inside_a_llama_index_query_engine(qa):
    # get_response_synthesizer("no_text") drops the llm and reaches for global Settings (OpenAI); build it directly
    synthesizer = NoText(llm=MockLLM())
    engine = RetrieverQueryEngine(retriever=qa.retriever, response_synthesizer=synthesizer)
    response = engine.query("AISIはいつ設立されましたか")
    assert response.source_nodes
    top = response.source_nodes[0]
    assert top.node.metadata["doc"].endswith(".txt") and "section" in top.node.metadata
    assert any("2024年2月" in n.node.get_content() for n in response.source_nodes)


def test_signals_say_what_each_ranking_said_about_every_hit(qa):
    retrieval = qa.retriever.retrieve_with_signals("AIセーフティ・インスティテュートはいつ設立された？", k=5)
    assert len(retrieval.hits) == len(retrieval.signals) == 5
    assert [h.node.node_id for h in retrieval.hits] == [
        h.node.node_id for h in qa.retrieve("AIセーフティ・インスティテュートはいつ設立された？", k=5)
    ]
    top = retrieval.signals[0]
    assert min(top.chunk_rank, top.sentence_rank, top.bm25_rank) == 0  # the fused winner leads some ranking
    assert retrieval.best_sentence_cosine >= max(s.sentence_cosine for s in retrieval.signals) - 1e-6
    assert retrieval.top_bm25 >= max(s.bm25 for s in retrieval.signals) > 0
