"""PDF, Word and HTML files through load → clean → split: pages, section paths, what is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.clean import clean_document
from ingest.load import load_file, supported_suffixes
from ingest.load_pdf import drop_running_lines
from ingest.split import split_document
from tests.documents import FOOTER, HEADER, write_policy_docx, write_policy_html, write_policy_pdf


def _chunks(path: Path):
    source = load_file(path)
    return split_document(clean_document(source.name, source.text, source.line_pages))


def _chunk_with(nodes, text: str):
    found = [n for n in nodes if text in n.get_content()]
    assert found, f"no chunk contains {text!r}"
    return found[0]


@pytest.fixture(scope="module")
def pdf_chunks(tmp_path_factory):
    return _chunks(write_policy_pdf(tmp_path_factory.mktemp("pdf") / "policy.pdf"))


def test_new_formats_are_registered():
    assert {".pdf", ".docx", ".html", ".htm", ".txt", ".md"} <= set(supported_suffixes())


def test_every_pdf_line_keeps_its_page(tmp_path: Path):
    source = load_file(write_policy_pdf(tmp_path / "policy.pdf"))
    lines = source.text.split("\n")
    assert len(source.line_pages) == len(lines)
    page_of = dict(zip(lines, source.line_pages))
    assert page_of[next(line for line in lines if line.startswith("施策の改善に活かす"))] == 2
    assert page_of[next(line for line in lines if line.startswith("（2）人材の育成"))] == 3


def test_pdf_chunks_carry_pages_and_section_paths(pdf_chunks):
    center = _chunk_with(pdf_chunks, "生成AI安全評価センターを2026年4月に設置")
    assert (center.metadata["page_start"], center.metadata["page_end"]) == (2, 2)
    assert center.metadata["section"] == "第1章 総論 > 3. 推進体制"
    budget = _chunk_with(pdf_chunks, "総額800億円")
    assert budget.metadata["page_start"] == 3
    assert budget.metadata["section"] == "第2章 具体的な施策 > （1）計算資源の整備"


def test_a_sentence_over_a_page_break_is_joined_and_spans_both_pages(pdf_chunks):
    node = _chunk_with(pdf_chunks, "次年度の施策の改善に活かすこととする。")
    assert (node.metadata["page_start"], node.metadata["page_end"]) == (1, 2)


def test_running_header_footer_line_numbers_and_footnote_marks_are_gone(pdf_chunks):
    text = "\n".join(n.get_content() for n in pdf_chunks)
    assert HEADER not in text
    for page in (1, 2, 3):
        assert FOOTER.format(page=page) not in text
    assert "ハルシネーションが生じる" in text  # the footnote mark 「 1」 is gone, the sentence whole
    assert "示すものである。" in text  # hard wrap joined, trailing line number 4 stripped


def test_pdf_footnote_is_its_own_block_on_its_page(pdf_chunks):
    note = _chunk_with(pdf_chunks, "事実と異なる内容をもっともらしく出力する現象")
    start = note.get_content().index("事実と異なる")
    runs = note.metadata["page_runs"]
    assert [page for offset, page in runs if offset <= start][-1] == 1


def test_pdf_table_rows_stay_rows(pdf_chunks):
    node = _chunk_with(pdf_chunks, "産業利用")
    assert "産業利用\t経済産業省\t中小企業への導入補助" in node.get_content()


def test_running_lines_need_to_repeat_on_most_pages():
    body = "本文その{}は各頁で異なる長い文章であり、ヘッダーではない。"
    pages = [["共通ヘッダー", body.format(i), f"- {i} -"] for i in (1, 2, 3)]
    pages[2].insert(1, "共通ヘッダーではない一度きりの行")
    kept = drop_running_lines(pages)
    assert kept[0] == [body.format(1)]
    assert "共通ヘッダーではない一度きりの行" in kept[2]


def test_docx_headings_from_styles_become_the_section_path(tmp_path: Path):
    nodes = _chunks(write_policy_docx(tmp_path / "plan.docx"))
    period = _chunk_with(nodes, "2025年度から2029年度まで")
    assert period.metadata["section"] == "地域DX推進計画 > 第1章 計画の概要 > 1. 計画期間"
    assert "page_start" not in period.metadata
    chief = _chunk_with(nodes, "本部長は知事が務め")
    assert chief.metadata["section"] == "地域DX推進計画 > 第2章 推進体制"
    assert "電子申請\t情報政策課\t対象手続の9割" in _chunk_with(nodes, "電子申請").get_content()


def test_html_keeps_main_text_and_headings_without_navigation_or_code(tmp_path: Path):
    nodes = _chunks(write_policy_html(tmp_path / "bousai.html"))
    text = "\n".join(n.get_content() for n in nodes)
    assert "避難情報をスマートフォンのアプリで配信する。配信は2025年10月に開始した。" in text
    assert _chunk_with(nodes, "スマートフォン").metadata["section"] == "防災DXの取組 > 避難情報の配信"
    assert "飲料水\t3日分" in text and "・沿岸部の全地区" in text
    for noise in ("ナビゲーション", "スクリプト", "font-family", "サイドバー", "Copyright", "公式ウェブサイト"):
        assert noise not in text


def test_html_in_shift_jis_with_a_meta_charset(tmp_path: Path):
    html = '<html><head><meta charset="Shift_JIS"></head><body><h1>見出し</h1><p>本文は日本語である。</p></body></html>'
    path = tmp_path / "sjis.htm"
    path.write_bytes(html.encode("cp932"))
    assert "本文は日本語である。" in load_file(path).text
