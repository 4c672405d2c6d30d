"""Incremental ingest, atomic swaps and index round-trips on a small real corpus."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import ingest, stale_reason
from rag.qa import PolicyQA
from rag.store import IndexLoadError, current_version, read_index
from tests.conftest import CORPUS, ROOT

SMALL = ["002_899c488193c17f37.txt", "003_85d7ebae2a956e44.txt"]


@pytest.fixture()
def small_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in SMALL:
        shutil.copy(CORPUS / name, corpus / name)
    return corpus


def chunk_map(root: Path) -> dict[str, tuple[str, str]]:
    return {n.node_id: (n.metadata["doc"], n.get_content()) for n in read_index(root).nodes}


def test_incremental_reingest_touches_only_the_changed_file(small_corpus: Path, tmp_path: Path):
    root = tmp_path / "index"
    first = ingest([small_corpus], root, progress=False)
    assert first.files == 2 and first.embedded == first.chunks
    assert 0 < first.sentences_embedded <= first.sentences and first.sentences > first.chunks
    before = chunk_map(root)

    again = ingest([small_corpus], root, progress=False)
    assert again.unchanged and again.embedded == 0

    path = small_corpus / SMALL[1]
    path.write_text(
        path.read_text(encoding="utf-8") + "\n\n追記された段落です。新しい施策を検討する。\n", encoding="utf-8"
    )
    third = ingest([small_corpus], root, progress=False)
    after = chunk_map(root)
    assert third.changed == [SMALL[1]]
    assert 1 <= third.embedded <= 2  # only the new or altered tail chunk
    assert 1 <= third.sentences_embedded <= 2  # and only the two new sentences
    assert 1 <= third.latent_embedded <= 2  # and only that chunk's latent terms
    unchanged_doc = {k: v for k, v in before.items() if v[0] == SMALL[0]}
    assert {k: v for k, v in after.items() if v[0] == SMALL[0]} == unchanged_doc
    assert any("追記された段落です" in text for _, text in after.values())


def test_deleted_file_is_dropped(small_corpus: Path, tmp_path: Path):
    root = tmp_path / "index"
    ingest([small_corpus], root, progress=False)
    (small_corpus / SMALL[0]).unlink()
    summary = ingest([small_corpus], root, progress=False)
    assert summary.removed == [SMALL[0]]
    assert {doc for doc, _ in chunk_map(root).values()} == {SMALL[1]}


def test_bad_files_are_skipped_by_name_and_the_rest_ingests(small_corpus: Path, tmp_path: Path):
    (small_corpus / "broken.txt").write_bytes(b"\x00\x01binary\x00")
    (small_corpus / "empty.md").write_text("")
    shutil.copy(small_corpus / SMALL[0], small_corpus / "copy_of_002.txt")
    summary = ingest([small_corpus], tmp_path / "index", progress=False)
    assert summary.files == 2
    assert set(summary.skipped) == {"broken.txt", "empty.md", "copy_of_002.txt"} or set(summary.skipped) == {
        "broken.txt",
        "empty.md",
        SMALL[0],
    }
    assert "binary" in summary.skipped["broken.txt"]
    assert any("skipped broken.txt" in line for line in summary.lines())


def test_index_round_trip_gives_identical_results(small_corpus: Path, tmp_path: Path):
    root = tmp_path / "index"
    ingest([small_corpus], root, progress=False)
    first, second = PolicyQA.load(root), PolicyQA.load(root)
    for question in ("事業継続計画", "AI法の目的は？", "座長は誰"):
        a = [(h.node.node_id, round(h.score, 6)) for h in first.retrieve(question, k=5)]
        b = [(h.node.node_id, round(h.score, 6)) for h in second.retrieve(question, k=5)]
        assert a == b and a
    assert np.allclose(first.index.vectors(), second.index.vectors())


def test_killed_ingest_leaves_the_previous_index_usable(small_corpus: Path, tmp_path: Path):
    root = tmp_path / "index"
    ingest([small_corpus], root, progress=False)
    good = current_version(root)
    shutil.copy(CORPUS / "000_eef5b314d8d39818.txt", small_corpus)  # a long embedding run to interrupt
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(small_corpus), "--index", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_version(root) == good
    qa = PolicyQA.load(root)
    assert qa.retrieve("事業継続計画", k=1)


def test_missing_and_damaged_indexes_say_what_to_run(tmp_path: Path, small_corpus: Path):
    with pytest.raises(IndexLoadError, match="rag ingest"):
        read_index(tmp_path / "nowhere")
    root = tmp_path / "index"
    ingest([small_corpus], root, progress=False)
    (current_version(root) / "latent.npz").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="latent.npz|--rebuild"):
        read_index(root)
    (current_version(root) / "dense.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="--rebuild"):
        read_index(root)


def test_an_index_without_latent_terms_ranks_three_ways_until_reingested(small_corpus: Path, tmp_path: Path):
    """An index written before the fourth ranking (no latent head in its manifest) still answers; the operator is
    told to re-ingest, which adds the latent terms and re-embeds nothing."""
    root = tmp_path / "index"
    ingest([small_corpus], root, progress=False)
    version = current_version(root)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    manifest["latent"] = ""
    (version / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (version / "latent.npz").unlink()
    old = PolicyQA.load(root)
    assert not old.retriever.latent and old.retrieve("AI法の目的は？", k=3)
    assert "latent" in stale_reason(old.index.manifest)
    summary = ingest([small_corpus], root, progress=False)
    assert not summary.unchanged and summary.embedded == 0 and summary.sentences_embedded == 0
    assert summary.latent_embedded == summary.chunks
    new = PolicyQA.load(root)
    assert new.retriever.latent and stale_reason(new.index.manifest) is None
    assert new.index.latent_vectors().shape[0] == summary.chunks


def test_progress_is_reported_for_every_embedded_chunk_and_sentence(small_corpus: Path, tmp_path: Path):
    calls: list[tuple[int, int]] = []
    summary = ingest([small_corpus], tmp_path / "index", progress=False, on_progress=lambda d, t: calls.append((d, t)))
    work = summary.embedded + summary.sentences_embedded + summary.latent_embedded  # one bar: chunks, sentences, latent
    assert summary.latent_embedded == summary.chunks
    assert calls and calls[-1] == (work, work)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_concurrent_ingests_take_turns_and_leave_one_whole_index(small_corpus: Path, tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path / "index"
    with ThreadPoolExecutor(max_workers=3) as pool:
        summaries = list(pool.map(lambda _: ingest([small_corpus], root, progress=False), range(3)))
    assert sum(not s.unchanged for s in summaries) == 1  # the others waited, then found it up to date
    index = read_index(root)
    assert len(index.nodes) == index.dense.ntotal == summaries[0].chunks
    assert [p.name for p in (root / "versions").iterdir()] == [current_version(root).name]
