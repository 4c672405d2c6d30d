"""The bundled texts as PDFs: page breaks where line numbering restarts, extraction speed, eval parity."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.bench import PDF_PAGES_PER_SECOND_TARGET, pdf_pages_per_second
from eval.data import load_questions
from eval.pdf_parity import TOLERANCE, as_pdf_questions, compare, differences, tolerances, within
from eval.textpdf import FONT_EMBEDDED, page_breaks, text_to_pdf
from ingest.load import load_file
from tests.conftest import CORPUS, QUESTIONS

NUMBERED = "000_eef5b314d8d39818.txt"  # line numbers at line ends, restarting on each page


def test_a_page_starts_where_the_line_numbering_restarts():
    pages = page_breaks((CORPUS / NUMBERED).read_text(encoding="utf-8"))
    body = next(p for p in pages if any(line.startswith("2022 年秋以降") for line in p))
    assert body[0].strip() == "I.はじめに 1"  # the page opens with its line 1
    assert any("G7 広島サミットの結果を踏まえ" in line for line in body[-3:])  # its footnote stays on it
    assert len(pages) >= 20


def test_generated_pdf_keeps_the_text_and_its_pages(tmp_path: Path):
    pdf = tmp_path / "000.pdf"
    pages = text_to_pdf((CORPUS / NUMBERED).read_text(encoding="utf-8"), pdf)
    source = load_file(pdf)
    assert max(source.line_pages) == pages
    assert "2022 年秋以降、生成 AI の性能は飛躍的に向上し" in source.text


@pytest.mark.skipif(not FONT_EMBEDDED, reason="needs fonts-ipafont-mincho (PDFium is slow on fonts not embedded)")
def test_pdf_extraction_and_cleaning_is_not_the_bottleneck(tmp_path: Path):
    pages, rate = pdf_pages_per_second(tmp_path)
    assert pages > 50
    assert rate >= PDF_PAGES_PER_SECOND_TARGET, f"{rate:.0f} pages/s"


def test_questions_follow_the_document_to_its_pdf_name():
    questions = load_questions(QUESTIONS)
    mapped = as_pdf_questions(questions, NUMBERED, "000_eef5b314d8d39818.pdf")
    assert [q.id for q in mapped] == [q.id for q in questions]
    assert not any(NUMBERED in q.docs for q in mapped)
    assert any("000_eef5b314d8d39818.pdf" in q.docs for q in mapped)


@pytest.mark.slow
def test_eval_figures_from_the_pdf_match_the_text(corpus_index):
    questions = load_questions(QUESTIONS)
    text, pdf, _ = compare(CORPUS, NUMBERED, questions, text_index=corpus_index)
    assert pdf["doc"]["questions"] > 10
    assert within(text, pdf, questions), (differences(text, pdf), tolerances(questions))
    # retrieval and answers over the answerable questions hold the plain ±0.02
    for name in ("recall_at_k", "mrr_at_10", "keyword_accuracy", "cited_support"):
        assert abs(differences(text, pdf)[name]) <= TOLERANCE, name
