"""The app over PDF and Word files (Streamlit AppTest): page numbers on cards, the cited page as an image."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.pipeline import ingest
from tests.conftest import ROOT
from tests.documents import write_image_only_pdf, write_policy_docx, write_policy_pdf

APP = str(ROOT / "app.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("app-documents")
    corpus = work / "corpus"
    corpus.mkdir()
    write_policy_pdf(corpus / "policy.pdf")
    write_policy_docx(corpus / "plan.docx")
    ingest([corpus], work / "index", progress=False)
    return corpus, work / "index"


def _app(monkeypatch, corpus: Path, index: Path, tmp_path: Path) -> AppTest:
    monkeypatch.setenv("SEISAKU_QA_CORPUS", str(corpus))
    monkeypatch.setenv("SEISAKU_QA_INDEX", str(index))
    monkeypatch.setenv("SEISAKU_QA_FEEDBACK", str(tmp_path / "feedback.jsonl"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption).replace("\\", "")


def test_pdf_source_card_names_the_page_and_shows_it_with_the_evidence(documents, monkeypatch, tmp_path):
    at = _app(monkeypatch, *documents, tmp_path)
    at.chat_input[0].set_value("生成AI安全評価センターはいつ設置されますか？").run()
    assert not at.exception, at.exception
    answer = at.session_state["turns"][-1]["answer"]
    cite = next(c for c in answer.citations if c.doc == "policy.pdf" and "2026年4月" in c.evidence)
    assert "policy.pdf ・ 第1章 総論 > 3. 推進体制 ・ p. 2" in _captions(at)
    assert not at.get("image")
    at.button(key=f"page-{at.session_state['turns'][-1]['id']}-{cite.n}").click().run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 1
    assert "policy.pdf p. 2（根拠の箇所に色を付けています）" in _captions(at)


def test_word_source_card_has_no_page_button(documents, monkeypatch, tmp_path):
    at = _app(monkeypatch, *documents, tmp_path)
    at.chat_input[0].set_value("推進本部の本部長は誰が務めますか？").run()
    answer = at.session_state["turns"][-1]["answer"]
    assert answer.citations and answer.citations[0].doc == "plan.docx"
    assert not [b for b in at.button if b.key and b.key.startswith("page-")]


def test_empty_corpus_folder_is_explained(monkeypatch, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    at = _app(monkeypatch, corpus, tmp_path / "index", tmp_path)
    shown = "\n".join(e.value for e in at.error).replace("\\", "")
    assert "読み込める資料がありません" in shown and ".pdf" in shown


def test_corpus_of_only_a_scan_names_the_reason(monkeypatch, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_image_only_pdf(corpus / "scan.pdf")
    at = _app(monkeypatch, corpus, tmp_path / "index", tmp_path)
    shown = "\n".join(e.value for e in at.error).replace("\\", "")
    assert "scan.pdf" in shown and "テキスト層がありません（スキャン画像のPDF）" in shown


def test_upload_is_off_unless_switched_on(documents, monkeypatch, tmp_path):
    monkeypatch.delenv("SEISAKU_QA_ALLOW_UPLOAD", raising=False)
    at = _app(monkeypatch, *documents, tmp_path)
    assert "資料の追加と削除" not in [h.value for h in at.sidebar.header]
    monkeypatch.setenv("SEISAKU_QA_ALLOW_UPLOAD", "1")
    at = _app(monkeypatch, *documents, tmp_path)
    assert "資料の追加と削除" in [h.value for h in at.sidebar.header]
    assert "64 MiB" in _captions(at) and "OCR" in _captions(at)
