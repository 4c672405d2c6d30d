"""Corpus files that cannot or should not be ingested: each is skipped by name, the rest ingests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ingest.load import MAX_FILE_BYTES
from ingest.pipeline import ingest
from rag.store import read_index
from tests.conftest import CORPUS

GOOD = "003_85d7ebae2a956e44.txt"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    shutil.copy(CORPUS / GOOD, root / GOOD)
    return root


def _docs(index: Path) -> set[str]:
    return {n.metadata["doc"] for n in read_index(index).nodes}


def test_huge_file_is_skipped_without_reading_it(corpus: Path, tmp_path: Path):
    huge = corpus / "huge.txt"
    with open(huge, "wb") as f:  # 50 MB of text
        line = ("人工知能の利活用に関する記述。" * 20 + "\n").encode()
        for _ in range(50 * 2**20 // len(line) + 1):
            f.write(line)
    assert huge.stat().st_size > MAX_FILE_BYTES
    summary = ingest([corpus], tmp_path / "index", progress=False)
    assert "too large" in summary.skipped["huge.txt"] and "MiB" in summary.skipped["huge.txt"]
    assert _docs(tmp_path / "index") == {GOOD}


def test_truncated_utf8_and_legacy_encodings_ingest(corpus: Path, tmp_path: Path):
    text = (CORPUS / "002_899c488193c17f37.txt").read_text(encoding="utf-8")[:3000]
    (corpus / "sjis.txt").write_bytes(text.encode("cp932", errors="ignore"))
    (corpus / "eucjp.txt").write_bytes(text.replace("AI法", "AI新法").encode("euc_jp", errors="ignore"))
    (corpus / "cut.txt").write_bytes("政策文書の本文。".encode() * 50 + "途中".encode()[:-1])
    summary = ingest([corpus], tmp_path / "index", progress=False)
    assert {"sjis.txt", "eucjp.txt"} <= _docs(tmp_path / "index")
    assert "cut.txt" in _docs(tmp_path / "index") or "cut.txt" in summary.skipped


def test_links_outside_the_corpus_and_broken_links_are_skipped(corpus: Path, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("社外秘の文書。これは索引に入ってはならない。", encoding="utf-8")
    (corpus / "escape.txt").symlink_to(secret)
    (corpus / "dangling.txt").symlink_to(corpus / "removed.txt")
    summary = ingest([corpus], tmp_path / "index", progress=False)
    assert "outside the corpus directory" in summary.skipped["escape.txt"]
    assert "broken symbolic link" in summary.skipped["dangling.txt"]
    assert _docs(tmp_path / "index") == {GOOD}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_skipped_as_permission_denied(corpus: Path, tmp_path: Path):
    locked = corpus / "locked.txt"
    locked.write_text("読めない文書。", encoding="utf-8")
    locked.chmod(0)
    summary = ingest([corpus], tmp_path / "index", progress=False)
    assert summary.skipped["locked.txt"] == "permission denied"


def test_file_changed_during_ingest_is_picked_up_next_time(corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    target = corpus / GOOD
    original = target.read_bytes()

    def edit_midway(done: int, total: int) -> None:
        if done < total:
            return
        target.write_bytes(original + "\n追記: 研究開発の推進体制を見直す。\n".encode())

    ingest([corpus], index, progress=False, on_progress=edit_midway)
    first = read_index(index)
    assert not any("推進体制を見直す" in n.get_content() for n in first.nodes)  # the bytes read were indexed
    second = ingest([corpus], index, progress=False)
    assert second.changed == [GOOD]
    assert any("推進体制を見直す" in n.get_content() for n in read_index(index).nodes)
