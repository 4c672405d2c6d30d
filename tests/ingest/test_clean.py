"""Each extraction artifact, repaired on a real excerpt of the bundled corpus."""

from ingest.clean import Line, clean_document, strip_line_numbers
from rag.text import normalize, squash
from tests.conftest import corpus_lines

D000, D001, D002, D003, D004 = (
    "000_eef5b314d8d39818.txt",
    "001_0ea924fc1fedfcee.txt",
    "002_899c488193c17f37.txt",
    "003_85d7ebae2a956e44.txt",
    "004_e0b8d5341bdd7257.txt",
)


def clean(name: str, start: int = 1, end: int = 100_000):
    return clean_document(name, corpus_lines(name, start, end))


def test_line_numbers_at_line_ends_are_removed_and_wraps_joined():
    doc = clean(D000, 126, 131)  # 「2022 年秋以降、…自然な会2 / 話、…」
    assert len(doc.blocks) == 1
    text = doc.blocks[0].text
    assert "自然な会話、プログラム" in text
    assert "行っていた作業を代替し" in text
    assert not any(ch.isdigit() for ch in text.split("会話")[0][-3:])


def test_line_number_glued_to_a_year_keeps_the_year():
    doc = clean(D000)
    assert "(2024年6月4日閣議決定)" in squash(doc.text)
    assert "20249" not in squash(doc.text)


def test_line_numbers_at_line_starts_are_removed():
    doc = clean(D004)
    text = doc.text
    assert (
        "・AIは、生成AIをはじめとする急速な技術進歩によって、世界の持続可能な発展に必要不可欠なテクノロジーに。" in text
    )
    assert "- 3 ・" not in text and "\n4 必要不可欠" not in text


def test_spaced_ai_is_joined():
    doc = clean(D003, 33, 34)
    assert "以下「AI法」という" in doc.text
    assert "A I" not in doc.text


def test_full_width_forms_are_kept_for_display_and_normalized_for_search():
    doc = clean(D000, 138, 140)
    assert "４段階" in doc.text
    assert "4段階" in normalize(doc.text)


def test_table_of_contents_with_dot_leaders_is_dropped():
    doc = clean(D000, 1, 58)
    assert "...." not in doc.text
    assert "イノベーション促進とリスクへの対応の両立" not in doc.text


def test_tab_separated_toc_is_dropped_but_body_heading_kept():
    doc = clean(D003)
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert headings.count("(1) 本指針の位置付け") == 1
    assert all("\t" not in h for h in headings)


def test_sup_tags_and_superscript_footnote_marks_are_removed():
    sup = clean(D001, 78, 78).text
    assert "統合イノベーション戦略 2024には" in sup and "<sup>" not in sup
    mark = clean(D003, 34, 34).text
    assert "全ての主体における" in mark and "¹" not in mark


def test_markdown_emphasis_and_headings_are_stripped():
    doc = clean(D001, 128, 132)
    assert "**" not in doc.text
    headings = [b.text for b in clean(D004, 80, 100).blocks if b.kind == "heading"]
    assert "（「世界で最もAIを開発・活用しやすい国」に向けて）" in headings


def test_footnote_inside_a_sentence_is_moved_out_and_the_sentence_rejoined():
    doc = clean(D000, 147, 170)  # page from line 1; a footnote interrupts 「全ての AI 関係者向け / の広島…」
    body = squash(next(b.text for b in doc.blocks if "議長国" in b.text))
    assert "「全てのAI関係者向けの広島プロセス国際指針」及び" in body
    assert doc.blocks[-1].kind == "footnote"
    assert squash(doc.blocks[-1].text).startswith("2023年5月に開催されたG7広島サミット")


def test_slide_table_keeps_its_rows():
    doc = clean(D002, 16, 26)
    table = next(b for b in doc.blocks if b.kind == "table" and b.text.startswith("法律の概要"))
    rows = table.text.split("\n")
    assert rows[0] == "法律の概要\t目的\t国民生活の向上、国民経済の発展"
    assert any(row.startswith("附則\t見直し規定") for row in rows)


def test_every_character_maps_back_to_its_source_line():
    name = D000
    source = corpus_lines(name, 1, 100_000).split("\n")
    doc = clean(name)
    block = next(b for b in doc.blocks if "自然な会話" in b.text)
    offset = block.text.index("話、プログラム")
    line = block.lines[offset]
    assert "話、プログラム" in source[line - 1]
    assert block.span() == (126, 130)


def test_numbers_in_text_are_not_mistaken_for_line_numbers():
    lines = [Line(1, "第 18 条"), Line(2, "2024"), Line(3, "本文です。")]
    strip_line_numbers(lines)
    assert [ln.text for ln in lines] == ["第 18 条", "2024", "本文です。"]


def test_titles_come_from_the_text():
    assert clean(D003).title == "人工知能関連技術の研究開発及び活用の適正性確保に関する指針"
    assert clean(D004).title == "人工知能基本計画骨子"
    assert "ファクトシート" in clean(D001).title


def test_footnote_is_linked_to_the_term_its_mark_follows():
    doc = clean_document("003_85d7ebae2a956e44.txt", corpus_lines("003_85d7ebae2a956e44.txt", 1, 100_000))
    notes = {b.refers_to: b.text for b in doc.blocks if b.kind == "footnote" and b.refers_to}
    assert notes["ハルシネーション"].startswith("生成AIにより、事実とは異なること")
    assert notes["API"].startswith("Application Programming Interface")
    assert "個人や組織が自らの行動や決定に対する責任" in notes["アカウンタビリティ"]


def test_a_plain_number_footnote_mark_links_its_footnote_too():
    """Doc 000 marks footnotes with a bare number after the word: 「システミック・リスク 13に」."""
    doc = clean_document("000_eef5b314d8d39818.txt", corpus_lines("000_eef5b314d8d39818.txt", 1, 100_000))
    notes = {b.refers_to: b.text for b in doc.blocks if b.kind == "footnote" and b.refers_to}
    assert notes["システミック・リスク"].startswith("特定のシステムの不全が関連するシステムにも波及し")
