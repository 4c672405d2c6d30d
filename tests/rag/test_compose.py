"""Candidates and composition: neighbour expansion, label spans, one citation per passage, no repeats."""

from __future__ import annotations

import numpy as np
from llama_index.core.schema import NodeRelationship, NodeWithScore, RelatedNodeInfo, TextNode

from rag.candidates import Candidate, candidates
from rag.compose import compose
from rag.retrieve import Signals

HEADING = "4) 自動運転関係の法令"
SIGNALS = Signals(0.9, 0.9, 1.0, 0, 0, 0)


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


def _next(nodes: dict[str, TextNode]):
    return lambda node: nodes.get(node.next_node.node_id) if node.next_node else None


def test_heading_at_the_end_of_a_chunk_pulls_in_the_next_chunk():
    first, second = _chunks()
    cands = candidates([NodeWithScore(node=first, score=1.0)], [SIGNALS], _next({"a": first, "b": second}))
    texts = [c.text for c in cands]
    assert HEADING not in texts  # the closing heading is no answer by itself
    assert any(t.startswith("道路交通法") for t in texts) and any(t.startswith("道路運送車両法") for t in texts)
    assert {c.node.node_id for c in cands} == {"a", "b"} and all(c.rank == 0 for c in cands)
    assert [c.is_neighbour for c in cands] == [False, True, True]


def test_without_the_neighbour_the_heading_is_all_there_is():
    first, _ = _chunks()
    cands = candidates([NodeWithScore(node=first, score=1.0)], [SIGNALS], _next({}))
    assert [c.node.node_id for c in cands] == ["a", "a"] and cands[-1].text == HEADING


def test_a_label_is_extended_over_what_it_introduces():
    node = TextNode(id_="n", text="基本的な考え方\n\n人間中心のAI社会を目指す。\n\n残り。", metadata={"doc": "x.txt"})
    label = candidates([NodeWithScore(node=node, score=1.0)], [SIGNALS], _next({}))[0]
    assert label.is_label and label.text.startswith("基本的な考え方") and "人間中心" in label.text


def test_compose_cites_likely_sentences_once_and_never_repeats_one():
    text = "AI法は2025年5月に成立した。\n\nAI法は2025年5月に成立した。\n\n全面施行は9月である。\n\n関係のない文である。"
    node = TextNode(id_="n", text=text, metadata={"doc": "x.txt", "line_runs": [[0, 1]]})
    cands = candidates([NodeWithScore(node=node, score=1.0)], [SIGNALS], _next({}))
    answer, citations = compose(cands, np.array([0.9, 0.9, 0.6, 0.1]), floor=0.3)
    assert answer.count("成立した") == 1 and "全面施行" in answer and "関係のない" not in answer
    assert answer.count("[1]") == 2 and len(citations) == 1
    assert citations[0].evidence.startswith("AI法は") and citations[0].evidence.endswith("9月である。")


def test_compose_adds_no_follower_below_the_floor_and_says_nothing_without_candidates():
    text = "AI法は2025年5月に成立した。\n\n全面施行は9月である。"
    node = TextNode(id_="n", text=text, metadata={"doc": "x.txt", "line_runs": [[0, 1]]})
    cands = candidates([NodeWithScore(node=node, score=1.0)], [SIGNALS], _next({}))
    answer, _ = compose(cands, np.array([0.25, 0.2]), floor=0.22)
    assert "成立した" in answer and "全面施行" not in answer  # the caller decided to answer; the best always does
    assert compose([], np.zeros(0), floor=0.3) == ("", [])


def test_real_index_answers_a_list_that_opens_the_next_chunk(qa):
    answer = qa.ask("自動運転に関係する法令にはどんなものがある？")
    assert not answer.abstained
    assert "道路交通法" in answer.text
    assert all(c.evidence.strip() != HEADING for c in answer.citations)


def _span(hit: NodeWithScore, start: int, end: int, rank: int = 0) -> Candidate:
    text = hit.node.get_content()[start:end]
    return Candidate(hit, rank, SIGNALS, (start, end), text, 0, 1, False, False, "")


def test_overlapping_spans_are_quoted_once_and_the_likeliest_passage_leads():
    """Two label-extended spans over neighbouring table rows share a row: the answer quotes their union once.
    The passage of the likeliest sentence is cited first even when retrieval ranked another passage above it."""
    rows = "行一 説明一\n行二 説明二\n行三 説明三"
    table = NodeWithScore(node=TextNode(id_="t", text=rows, metadata={"doc": "x.txt"}))
    note = NodeWithScore(node=TextNode(id_="f", text="用語とは、定義の文をいう。", metadata={"doc": "y.txt"}))
    first_rows, last_rows = _span(table, 0, 13), _span(table, 7, 20)
    definition = _span(note, 0, 13, rank=1)
    text, citations = compose([first_rows, last_rows, definition], np.array([0.6, 0.55, 0.8]), 0.1)
    assert text.count("行二 説明二") == 1 and "行三 説明三" in text  # the overlapping spans merge: quoted once
    assert [c.chunk_id for c in citations] == ["f", "t"] and text.startswith("用語とは")
