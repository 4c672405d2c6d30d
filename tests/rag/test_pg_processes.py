"""Several processes on one database: two answer throughout while a third ingests a new document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import CORPUS, ROOT, pg_corpus_store
from tests.rag.test_pg_store import NEW_DOC

# An app server in miniature: answer in a loop, pick up a new version when one goes live.
ANSWERER = """
import json, sys, time
from rag.qa import PolicyQA
from rag.store import open_store
url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
store = open_store(url)
qa = PolicyQA.load(store=url)
new_seen = 0
while time.time() < deadline and new_seen < 3:
    live = store.current()
    if live != qa.index.version:
        qa = PolicyQA.load(store=url, embedder=qa.retriever.embedder)
    answer = qa.ask("量子暗号推進室はいつ設置された？")
    new = "2031年4月" in answer.text
    new_seen += new
    docs = sorted({c.doc for c in answer.passages})
    print(json.dumps({"version": qa.index.version, "new": new, "docs": docs}), flush=True)
"""


def test_two_answering_processes_pick_up_a_document_a_third_ingests(pg_database, corpus_index, tmp_path: Path):
    url = pg_corpus_store(pg_database, corpus_index)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    answerers = [
        subprocess.Popen(
            [sys.executable, "-c", ANSWERER, url, "300"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        first = [json.loads(p.stdout.readline()) for p in answerers]  # both are answering the old corpus
        assert all(not line["new"] for line in first)
        old = first[0]["version"]
        corpus = tmp_path / "corpus"
        shutil.copytree(CORPUS, corpus)
        (corpus / "900_quantum.txt").write_text(NEW_DOC, encoding="utf-8")
        started = time.time()
        ingest = subprocess.run(
            [sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--store", url],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        lines = [[json.loads(line) for line in p.stdout] for p in answerers]
        for p in answerers:
            assert p.wait(timeout=60) == 0
    finally:
        for p in answerers:
            p.kill()
    for seen in lines:
        versions = [line["version"] for line in seen]
        assert set(versions) <= {old, versions[-1]} and versions[-1] != old  # the old version or the new one
        assert seen[-1]["new"] and "900_quantum.txt" in seen[-1]["docs"]
        assert all(not line["new"] for line in seen if line["version"] == old)  # never a mix
    assert time.time() - started < 300
