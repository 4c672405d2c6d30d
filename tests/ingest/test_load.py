from pathlib import Path

import pytest

from ingest.load import LoadError, decode, discover, load_file
from tests.conftest import corpus_lines

SAMPLE = corpus_lines("003_85d7ebae2a956e44.txt", 36, 36)  # 本指針の構成としては… (no superscripts)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "euc_jp"])
def test_japanese_encodings_decode_to_the_same_text(tmp_path: Path, encoding: str):
    path = tmp_path / f"doc_{encoding}.txt"
    path.write_bytes(SAMPLE.encode(encoding))
    source = load_file(path)
    assert source.text == SAMPLE
    assert not source.text.startswith("\ufeff")


def test_binary_file_is_rejected_with_reason(tmp_path: Path):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(LoadError, match="binary"):
        load_file(path)


def test_empty_and_unsupported_files_are_rejected(tmp_path: Path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    with pytest.raises(LoadError, match="empty"):
        load_file(tmp_path / "empty.txt")
    with pytest.raises(LoadError, match="unsupported"):
        load_file(tmp_path / "slides.pptx")


def test_truncated_utf8_falls_back_or_fails_clearly():
    data = SAMPLE.encode("utf-8")[:-1]  # cut inside the last multi-byte character
    try:
        text, encoding = decode(data)
    except LoadError as exc:
        assert "UTF-8" in str(exc)
    else:
        assert encoding != "utf-8" and text


def test_discover_finds_registered_suffixes_only(tmp_path: Path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.md").write_text("x")
    (tmp_path / "c.bin").write_text("x")
    assert [p.name for p in discover([tmp_path])] == ["a.txt", "b.md"]
