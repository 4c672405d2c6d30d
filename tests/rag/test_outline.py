"""「N つの…」 questions answered from the document's own numbered list."""

from __future__ import annotations

import pytest
from llama_index.core.schema import NodeWithScore, TextNode

from rag.outline import OutlineAnswerer, asked_count, asked_ordinal
from rag.text import default_tokenizer

PARENT = "(3) 適正性確保のための基本方針"


def _node(i: int, section: str, text: str) -> TextNode:
    return TextNode(id_=f"d#{i}", text=text, metadata={"doc": "d.txt", "section": section})


def _nodes() -> list[TextNode]:
    """Four circled items spread over three chunks, the second item inside the first item's chunk."""
    return [
        _node(0, PARENT, f"{PARENT}\n\n基本方針を以下のとおり示す。\n\n① リスクベースでのアプローチ"),
        _node(1, f"{PARENT} > ① リスクベースでのアプローチ", "対策を講じる。\n\n② 関与\n\n協働する。"),
        _node(2, f"{PARENT} > ③ 一貫通貫の構築", "③ 一貫通貫の構築\n\n構築する。"),
        _node(3, f"{PARENT} > ④ アジャイルな対応", "④ アジャイルな対応\n\n対応する。"),
    ]


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("基本方針を4つ挙げて", 4),
        ("基本計画の3原則とは？", 3),
        ("三つの柱は？", 3),
        ("一つだけ教えて", None),
        ("AI法の目的は？", None),
    ],
)
def test_asked_count(question: str, count: int | None):
    assert asked_count(question) == count


def _by_doc(nodes: list[TextNode]):
    return lambda doc: [n for n in nodes if n.metadata["doc"] == doc]


def test_items_spread_over_chunks_are_listed_and_each_cited_where_it_stands():
    nodes = _nodes()
    answerer = OutlineAnswerer(_by_doc(nodes), default_tokenizer())
    hits = [NodeWithScore(node=nodes[2], score=1.0)]
    text, citations = answerer.answer("適正性確保のための基本方針を4つ挙げて", hits)
    assert text == "① リスクベースでのアプローチ[1]\n② 関与[2]\n③ 一貫通貫の構築[3]\n④ アジャイルな対応[4]"
    assert [c.chunk_id for c in citations] == ["d#0", "d#1", "d#2", "d#3"]
    assert all(c.evidence.startswith(("①", "②", "③", "④")) for c in citations)


def test_an_ordinal_question_gets_only_that_item():
    assert asked_ordinal("4つの基本方針の2つ目は？") == 2 and asked_count("4つの基本方針の2つ目は？") == 4
    nodes = _nodes()
    answerer = OutlineAnswerer(_by_doc(nodes), default_tokenizer())
    text, citations = answerer.answer("4つの基本方針の2つ目は？", [NodeWithScore(node=nodes[0], score=1.0)])
    assert text == "② 関与[1]" and [c.chunk_id for c in citations] == ["d#1"]


def test_a_list_of_another_length_is_not_an_answer():
    nodes = _nodes()
    answerer = OutlineAnswerer(_by_doc(nodes), default_tokenizer())
    assert answerer.answer("適正性確保のための基本方針を3つ挙げて", [NodeWithScore(node=nodes[0], score=1.0)]) is None


def test_real_index_lists_the_four_policies_of_the_basic_plan(qa):
    answer = qa.ask("人工知能基本計画の4つの方針を簡単に教えて")
    assert not answer.abstained and len(answer.citations) == 4
    for policy in ("AIを使う", "AIを創る", "AIの信頼性を高める", "AIと協働する"):
        assert policy in answer.text
    assert all(check.supported for check in answer.checks)
