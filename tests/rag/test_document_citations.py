"""Answers from PDF, Word and HTML files cite the page (PDF) and the heading path (all formats)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.qa import PolicyQA
from tests.documents import write_policy_docx, write_policy_html, write_policy_pdf


@pytest.fixture(scope="module")
def documents_index(tmp_path_factory) -> Path:
    """`rag ingest some.pdf other.docx page.html`: the three files named on the command line."""
    work = tmp_path_factory.mktemp("documents")
    files = [
        write_policy_pdf(work / "policy.pdf"),
        write_policy_docx(work / "plan.docx"),
        write_policy_html(work / "bousai.html"),
    ]
    assert main(["ingest", *map(str, files), "--index", str(work / "index")]) == 0
    return work / "index"


@pytest.fixture(scope="module")
def documents_qa(documents_index) -> PolicyQA:
    return PolicyQA.load(documents_index)


def _citation(answer, text: str):
    assert not answer.abstained, answer.text
    found = [c for c in answer.citations if text in c.evidence]
    assert found, [c.evidence for c in answer.citations]
    return found[0]


def test_all_three_formats_are_indexed(documents_qa):
    assert set(documents_qa.documents) == {"policy.pdf", "plan.docx", "bousai.html"}


@pytest.mark.parametrize(
    ("question", "evidence", "page", "section"),
    [
        ("生成AI安全評価センターはいつ設置されますか？", "2026年4月", 2, "第1章 総論 > 3. 推進体制"),
        ("計算資源の整備に充てる総額はいくらですか？", "800億円", 3, "第2章 具体的な施策 > （1）計算資源の整備"),
    ],
)
def test_pdf_citations_name_the_page(documents_qa, question, evidence, page, section):
    cite = _citation(documents_qa.ask(question), evidence)
    assert cite.doc == "policy.pdf"
    assert (cite.page_start, cite.page_end) == (page, page)
    assert cite.section == section


def test_word_and_html_citations_name_the_heading_path_and_no_page(documents_qa):
    chief = _citation(documents_qa.ask("推進本部の本部長は誰が務めますか？"), "知事")
    assert (chief.doc, chief.section, chief.page_start) == ("plan.docx", "地域DX推進計画 > 第2章 推進体制", None)
    start = _citation(documents_qa.ask("避難情報のアプリ配信はいつ始まりましたか？"), "2025年10月")
    assert (start.doc, start.section, start.page_end) == ("bousai.html", "防災DXの取組 > 避難情報の配信", None)


def test_ask_json_carries_the_pages(documents_index, capsys):
    question = "計算資源の整備に充てる総額はいくらですか？"
    assert main(["ask", question, "--json", "--index", str(documents_index)]) == 0
    cited = json.loads(capsys.readouterr().out)["citations"]
    pdf = [c for c in cited if c["doc"] == "policy.pdf" and "800億円" in c["evidence"]]
    assert pdf and (pdf[0]["page_start"], pdf[0]["page_end"]) == (3, 3)


def test_ask_text_output_shows_the_page(documents_index, capsys):
    assert main(["ask", "生成AI安全評価センターはいつ設置されますか？", "--index", str(documents_index)]) == 0
    assert "(policy.pdf)" in (out := capsys.readouterr().out) and "p. 2" in out
