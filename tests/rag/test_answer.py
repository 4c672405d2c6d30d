"""The extractive composer: neighbour expansion when a chunk ends in a heading."""

from __future__ import annotations

from llama_index.core.schema import NodeRelationship, NodeWithScore, RelatedNodeInfo, TextNode

from rag.answer import ExtractiveComposer
from rag.text import default_tokenizer

HEADING = "4) 自動運転関係の法令"


def _chunks() -> tuple[TextNode, TextNode]:
    """Two consecutive chunks whose border falls right under a heading."""
    first = TextNode(
        id_="a",
        text="不正競争防止法：不正競争の防止を目的とする法令。\n\n" + HEADING,
        metadata={"doc": "x.txt", "section": "1.3 法令 > 3) 知的財産に関する法令"},
    )
    second = TextNode(
        id_="b",
        text="道路交通法：道路における危険を防止することを目的とした法令。\n\n道路運送車両法：安全性の確保を目的とされる。",
        metadata={"doc": "x.txt", "section": f"1.3 法令 > {HEADING}"},
    )
    first.relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id="b")
    second.relationships[NodeRelationship.PREVIOUS] = RelatedNodeInfo(node_id="a")
    return first, second


def _composer(nodes: dict[str, TextNode]) -> ExtractiveComposer:
    idf = {t: 1.0 for t in ["法令", "自動", "運転", "関係", "道路", "交通", "法"]}

    def next_node(node: TextNode) -> TextNode | None:
        return nodes.get(node.next_node.node_id) if node.next_node else None

    return ExtractiveComposer(default_tokenizer(), idf, next_node=next_node)


def test_heading_at_the_end_of_a_chunk_pulls_in_the_next_chunk():
    first, second = _chunks()
    composer = _composer({"a": first, "b": second})
    text, citations = composer.compose("自動運転に関係する法令は？", [NodeWithScore(node=first, score=1.0)])
    assert "道路交通法" in text and "道路運送車両法" in text
    assert [c.chunk_id for c in citations] == ["b"]  # the neighbour is cited, not the bare heading
    assert citations[0].evidence in second.get_content()


def test_without_the_neighbour_the_heading_is_all_there_is():
    first, _ = _chunks()
    composer = _composer({})
    text, citations = composer.compose("自動運転に関係する法令は？", [NodeWithScore(node=first, score=1.0)])
    assert "道路交通法" not in text and [c.chunk_id for c in citations] == ["a"]


def test_real_index_answers_a_list_that_opens_the_next_chunk(qa):
    answer = qa.ask("自動運転に関係する法令にはどんなものがある？")
    assert not answer.abstained
    assert "道路交通法" in answer.text and "道路運送車両法" in answer.text
    assert all(c.evidence.strip() != HEADING for c in answer.citations)


def _best(question: str, idf: dict[str, float], *passages: tuple[str, str]) -> str:
    """Text of the composer's top candidate over (text, section) passages given in rank order."""
    hits = [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=text, metadata={"doc": "x.txt", "section": section}), score=1.0)
        for i, (text, section) in enumerate(passages)
    ]
    return ExtractiveComposer(default_tokenizer(), idf).candidates(question, hits)[0].text


def test_a_count_question_prefers_the_sentence_with_that_counter():
    passage = ("回答した日本企業は2025年時点で多数の社に上る。\n\n日本企業9社が回答した。", "報告枠組み")
    best = _best("回答した日本企業は何社？", {"日本": 1.0, "企業": 1.0, "回答": 1.0}, passage)
    assert best.startswith("日本企業9社")


def test_a_table_row_headed_by_the_asked_topic_wins():
    prose = ("AI法第4条から第8条において責務が規定される主体を指す。", "脚注")
    table = ("目的\t国民生活の向上\n責務\t事業者は国等の施策に協力しなければならない", "AI法の概要")
    idf = {"事業": 1.0, "者": 1.0, "責務": 2.0, "法": 1.0}
    best = _best("AI法で事業者にはどのような責務が課されていますか", idf, prose, table)
    assert best.startswith("責務\t事業者は")


def test_a_definition_question_prefers_the_sentence_with_the_term_as_subject():
    passing = ("報告書では、AI 開発者、AI 提供者、AI 利用者の3つの主体が存在するものとして述べる。", "関係主体")
    definition = ("まず、AI 開発者は、データ収集やモデル学習を行う者とする。", "関係主体")
    best = _best("中間とりまとめでいうAI開発者とは？", {"ai": 0.5, "開発": 1.0, "者": 1.0}, passing, definition)
    assert best.startswith("まず、AI 開発者は")
