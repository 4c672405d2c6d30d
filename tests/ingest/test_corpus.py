"""Adding uploaded files to the corpus folder and removing them: names, limits, duplicates, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import load_pdf
from ingest.corpus import add_document, limits_text, remove_document, sanitize_name
from ingest.load import MAX_DOCUMENT_BYTES, LoadError
from tests.documents import write_image_only_pdf, write_policy_pdf


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\報告書 2025.PDF", "報告書 2025.pdf"),
        (".hidden.md", "hidden.md"),
        ("a<b>|c?.docx", "a_b_c.docx"),
        ("ｆｕｌｌｗｉｄｔｈ．ｔｘｔ", "fullwidth.txt"),
        ("\x00\x1f.html", "document.html"),
    ],
)
def test_names_are_sanitized(given: str, saved: str):
    assert sanitize_name(given) == saved


def test_long_names_keep_their_suffix():
    name = sanitize_name("長" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name) <= 120


def test_limits_are_stated_per_type():
    text = limits_text()
    assert ".pdf" in text and "64 MiB" in text and ".txt" in text and "16 MiB" in text


def test_add_saves_and_reports_duplicates_by_content(tmp_path: Path):
    corpus = tmp_path / "corpus"
    data = write_policy_pdf(tmp_path / "policy.pdf").read_bytes()
    assert add_document(corpus, "報告書.pdf", data).name == "報告書.pdf"
    with pytest.raises(LoadError, match="報告書.pdf と同じ内容"):
        add_document(corpus, "copy.pdf", data)
    assert sorted(p.name for p in corpus.iterdir()) == ["報告書.pdf"]  # nothing half-written is left


def test_add_refuses_what_ingest_would_skip_and_writes_nothing(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    scan = write_image_only_pdf(tmp_path / "scan.pdf").read_bytes()
    with pytest.raises(LoadError, match="テキスト層がありません"):
        add_document(corpus, "scan.pdf", scan)
    with pytest.raises(LoadError, match=load_pdf.NOT_A_PDF):
        add_document(corpus, "fake.pdf", b"<html>not a pdf</html>")
    with pytest.raises(LoadError, match="unsupported file type .exe"):
        add_document(corpus, "tool.exe", b"MZ")
    with pytest.raises(LoadError, match="too large"):
        add_document(corpus, "big.pdf", b"%PDF-1.7\n" + b"0" * MAX_DOCUMENT_BYTES)
    with pytest.raises(LoadError, match="empty"):
        add_document(corpus, "empty.txt", b"")
    assert list(corpus.iterdir()) == []


def test_same_name_new_content_replaces(tmp_path: Path):
    corpus = tmp_path / "corpus"
    add_document(corpus, "memo.txt", "最初の版の本文です。".encode())
    result = add_document(corpus, "memo.txt", "改訂した版の本文です。".encode())
    assert result.replaced and (corpus / "memo.txt").read_text(encoding="utf-8") == "改訂した版の本文です。"


def test_remove_only_files_directly_in_the_corpus(tmp_path: Path):
    corpus = tmp_path / "corpus"
    add_document(corpus, "memo.txt", "本文です。".encode())
    (tmp_path / "outside.txt").write_text("外のファイル", encoding="utf-8")
    with pytest.raises(LoadError, match="削除できません"):
        remove_document(corpus, "../outside.txt")
    remove_document(corpus, "memo.txt")
    assert not (corpus / "memo.txt").exists() and (tmp_path / "outside.txt").exists()
