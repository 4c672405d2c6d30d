"""Index stores: the one place where ingest (writer) and rag (reader) meet.

`open_store` picks the backend from a location: a `postgresql://…` URL is the
PostgreSQL + pgvector store (`rag.store.postgres`), anything else a directory of
the embedded FAISS store (`rag.store.faiss`, the default). The location comes from
`--store` / `PolicyQA.load(store=…)`, else $SEISAKU_QA_STORE, else the index
directory ($SEISAKU_QA_INDEX, `index`).
"""

from __future__ import annotations

import os
from pathlib import Path

from rag.store.base import (
    FORMAT_VERSION,
    IndexLoadError,
    IndexSnapshot,
    Manifest,
    Ranking,
    Rankings,
    Store,
    StoreUnavailable,
    lines_of_span,
    node_sentences,
)
from rag.store.faiss import (
    KEEP_OLD_VERSIONS,
    POINTER,
    VERSIONS,
    FaissStore,
    StoredIndex,
    bm25_from_terms,
    current_version,
    read_index,
    write_index,
)

__all__ = [
    "FORMAT_VERSION",
    "KEEP_OLD_VERSIONS",
    "POINTER",
    "VERSIONS",
    "FaissStore",
    "IndexLoadError",
    "IndexSnapshot",
    "Manifest",
    "Ranking",
    "Rankings",
    "Store",
    "StoreUnavailable",
    "StoredIndex",
    "bm25_from_terms",
    "current_version",
    "is_database_url",
    "lines_of_span",
    "node_sentences",
    "open_store",
    "read_index",
    "store_location",
    "write_index",
]

URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def store_location(location: str | Path | Store | None = None) -> str | Path | Store:
    """The location asked for, else $SEISAKU_QA_STORE, else the index directory."""
    from rag import config

    if location is None or location == "":
        location = os.environ.get("SEISAKU_QA_STORE") or config.index_dir()
    return location


def open_store(location: str | Path | Store | None = None) -> Store:
    """The store at `location` (see the module docstring for the default); a Store is returned as is."""
    location = store_location(location)
    if isinstance(location, Store):
        return location
    if is_database_url(location):
        from rag.store.postgres import PostgresStore

        return PostgresStore.shared(str(location))
    return FaissStore(Path(location))
