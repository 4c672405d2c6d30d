"""PDF and Word files that cannot be ingested are skipped with a named reason; so is a folder with nothing to index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest import load_docx, load_pdf
from ingest.load import MAX_DOCUMENT_BYTES, LoadError, load_file
from ingest.pipeline import NothingToIndexError, ingest
from rag.cli import main
from rag.store import read_index
from tests.documents import write_image_only_pdf, write_policy_pdf, write_truncated_pdf


@pytest.fixture(scope="module")
def good_pdf(tmp_path_factory) -> Path:
    return write_policy_pdf(tmp_path_factory.mktemp("good") / "policy.pdf")


def _bad_files(folder: Path, good_pdf: Path) -> dict[str, str]:
    """Each bad file, written into `folder`, with the reason it must be skipped for."""
    write_image_only_pdf(folder / "scan.pdf")
    write_policy_pdf(folder / "locked.pdf", encrypt="secret")
    write_truncated_pdf(folder / "cut.pdf", good_pdf)
    (folder / "zero.pdf").write_bytes(b"")
    (folder / "page.pdf").write_text("<html><body>PDFではない</body></html>", encoding="utf-8")
    (folder / "memo.docx").write_text("Word ではないただのテキスト", encoding="utf-8")
    with open(folder / "huge.pdf", "wb") as f:  # sparse: the size check must refuse it before reading
        f.write(b"%PDF-1.7\n")
        f.truncate(MAX_DOCUMENT_BYTES + 1)
    return {
        "scan.pdf": load_pdf.NO_TEXT_LAYER,
        "locked.pdf": load_pdf.ENCRYPTED,
        "cut.pdf": load_pdf.TRUNCATED,
        "zero.pdf": "empty file (0 bytes)",
        "page.pdf": load_pdf.NOT_A_PDF,
        "memo.docx": load_docx.NOT_A_DOCX,
        "huge.pdf": "file too large (64.0 MiB > 64 MiB)",
    }


def test_each_bad_file_is_refused_with_its_reason(tmp_path: Path, good_pdf: Path):
    expected = _bad_files(tmp_path, good_pdf)
    for name, reason in expected.items():
        with pytest.raises(LoadError) as caught:
            load_file(tmp_path / name)
        assert str(caught.value).startswith(reason), name
    assert "テキスト層がありません（スキャン画像のPDF）" in expected["scan.pdf"]


def test_bad_files_are_skipped_by_name_and_the_rest_is_indexed(tmp_path: Path, good_pdf: Path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(good_pdf, corpus / "policy.pdf")
    expected = _bad_files(corpus, good_pdf)
    assert main(["ingest", str(corpus), "--index", str(tmp_path / "index")]) == 0
    out = capsys.readouterr().out
    for name, reason in expected.items():
        assert f"skipped {name}: {reason}" in out
    stored = read_index(tmp_path / "index")
    assert {n.metadata["doc"] for n in stored.nodes} == {"policy.pdf"}
    assert set(stored.manifest.skipped) == set(expected)


def test_empty_folder_says_so_and_exits_2(tmp_path: Path, capsys):
    empty = tmp_path / "new"
    empty.mkdir()
    assert main(["ingest", str(empty), "--index", str(tmp_path / "index")]) == 2
    err = capsys.readouterr().err
    assert "no supported file" in err and ".pdf" in err and "Traceback" not in err
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_folder_of_only_bad_files_names_every_reason(tmp_path: Path, good_pdf: Path):
    expected = _bad_files(tmp_path, good_pdf)
    with pytest.raises(NothingToIndexError) as caught:
        ingest([tmp_path], tmp_path / "index", progress=False)
    assert caught.value.skipped.keys() == expected.keys()
    assert "every file was skipped" in str(caught.value)


def test_removing_every_file_keeps_the_previous_index(tmp_path: Path, good_pdf: Path):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    shutil.copy(good_pdf, corpus / "policy.pdf")
    ingest([corpus], index, progress=False)
    before = read_index(index).path
    (corpus / "policy.pdf").unlink()
    with pytest.raises(NothingToIndexError):
        ingest([corpus], index, progress=False)
    assert read_index(index).path == before
