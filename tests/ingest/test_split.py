from ingest.clean import clean_document
from ingest.split import split_document
from rag.store import lines_of_span
from rag.text import squash
from tests.conftest import CORPUS


def nodes_of(name: str, max_chars: int = 400):
    return split_document(clean_document(name, (CORPUS / name).read_text(encoding="utf-8")), max_chars)


def test_chunks_end_on_sentence_boundaries_and_respect_the_size():
    for name in ("000_eef5b314d8d39818.txt", "003_85d7ebae2a956e44.txt"):
        nodes = nodes_of(name)
        assert nodes
        for node in nodes:
            text = node.get_content()
            assert len(text) <= 400 + 60  # a heading may lead the chunk
            last = text.rstrip()[-1]
            assert last in "。！？」）)】" or "\n" in text or len(text) < 120 or last not in "、，"


def test_chunks_carry_citation_metadata_and_link_to_neighbours():
    nodes = nodes_of("003_85d7ebae2a956e44.txt")
    node = next(n for n in nodes if "事業継続計画" in n.get_content())
    meta = node.metadata
    assert meta["doc"] == "003_85d7ebae2a956e44.txt"
    assert meta["title"] == "人工知能関連技術の研究開発及び活用の適正性確保に関する指針"
    assert meta["section"].endswith("(4) 事業継続性確保による安全な環境の維持")
    assert node.prev_node is not None and node.next_node is not None
    source = (CORPUS / meta["doc"]).read_text(encoding="utf-8").split("\n")
    start, end = lines_of_span(meta["line_runs"], 0, len(node.get_content()))
    assert (start, end) == (meta["line_start"], meta["line_end"])
    window = squash("".join(source[start - 1 : end]))
    assert squash("事業継続計画をあらかじめ策定する") in window


def test_section_paths_follow_the_heading_hierarchy():
    nodes = nodes_of("000_eef5b314d8d39818.txt")
    sections = {n.metadata["section"] for n in nodes}
    assert (
        "III.具体的な制度・施策の方向性 > １.全般的な事項 > （２）安全性の向上等 > "
        "③重大インシデント等に関する政府による調査と情報発信" in sections
    )


def test_chunk_size_is_configurable():
    small, large = nodes_of("001_0ea924fc1fedfcee.txt", 250), nodes_of("001_0ea924fc1fedfcee.txt", 800)
    assert len(small) > len(large)
