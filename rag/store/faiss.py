"""The embedded store (the default): the index as files in one directory, read into each process.

Layout of an index root:
    CURRENT                 name of the live version, replaced atomically
    versions/<id>/manifest.json, nodes.jsonl, dense.faiss, sentences.faiss, bm25/, latent.npz
`dense.faiss` holds one vector per chunk; `sentences.faiss` one per sentence,
in node order and, within a node, in the order of `rag.text.sentence_spans`
over the node text (so the spans are recomputed at load, not stored);
`latent.npz` (when the manifest names a latent head) one latent-term vector per chunk (scipy CSR).
A writer builds a complete new version directory, then swaps CURRENT with
os.replace, so a reader sees the old index or the new one, never a mix, and
an ingest killed midway leaves the previous index untouched.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import scipy.sparse
from llama_index.core.schema import TextNode

from rag.store.base import (
    EMPTY_TERM,
    FORMAT_VERSION,
    IndexLoadError,
    IndexSnapshot,
    Manifest,
    Ranking,
    Rankings,
    Store,
    latent_scores,
    node_sentences,
    sentence_moments,
    top_matching,
)

POINTER = "CURRENT"
VERSIONS = "versions"
KEEP_OLD_VERSIONS = 1  # readers that loaded the previous version may still be reading files
# From this many vectors an index is HNSW (approximate) instead of flat (exact, linear in the corpus).
HNSW_MIN_VECTORS = int(os.environ.get("SEISAKU_QA_HNSW_MIN", "50000"))
# efSearch at 1000x the corpus (1M sentence vectors), fused recall@10 against exact / retrieve p95:
# 256 0.903 / 54 ms, 512 0.915 / 51 ms, 1024 0.943 / 49 ms, 2048 0.967 / 62 ms
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 2048


@dataclass(eq=False)
class StoredIndex(IndexSnapshot):
    """Everything the query side needs, as loaded from one version directory."""

    path: Path
    manifest: Manifest
    nodes: list[TextNode]
    dense: faiss.Index
    bm25: Any  # bm25s.BM25
    sentences: faiss.Index  # one vector per sentence (see the module docstring for the order)
    sentence_spans: list[tuple[int, int, int]]  # (node row, start, end) of each vector in `sentences`
    latent: Any = None  # chunks' latent-term vectors (CSR) or None

    def __post_init__(self) -> None:
        self._latent_by_feature = None if self.latent is None else self.latent.tocsc()
        self._doc_of = np.array([n.metadata["doc"] for n in self.nodes])
        self._sentence_matrix = self.sentences.reconstruct_n(0, self.sentences.ntotal)
        rows = np.array([row for row, _, _ in self.sentence_spans], dtype=np.int64)
        # sentences are stored node by node: each node's run starts where its row first appears
        self._sentence_nodes, self._sentence_starts = np.unique(rows, return_index=True)
        self._sentence_ends = np.append(self._sentence_starts[1:], len(rows))
        self._sentence_node_of = rows
        self.approximate = _is_hnsw(self.dense) or _is_hnsw(self.sentences)
        for index in (self.dense, self.sentences):
            if _is_hnsw(index):
                index.hnsw.efSearch = HNSW_EF_SEARCH
        self._chunk_matrix = self.vectors() if _is_hnsw(self.dense) else None

    @property
    def version(self) -> str:
        return self.path.name

    def vectors(self) -> np.ndarray:
        return self.dense.reconstruct_n(0, self.dense.ntotal)

    def sentence_vectors(self) -> np.ndarray:
        return self._sentence_matrix

    def latent_vectors(self) -> Any:
        return self.latent

    def latent_ranking(self, query: Any, n: int, mask: np.ndarray | None) -> Ranking:
        """Chunks by the dot product of latent-term vectors; only chunks sharing a feature with the query."""
        by_feature = self._latent_by_feature

        def postings(feature: int) -> tuple[np.ndarray, np.ndarray] | None:
            start, end = by_feature.indptr[feature], by_feature.indptr[feature + 1]
            return (by_feature.indices[start:end], by_feature.data[start:end]) if end > start else None

        return top_matching(latent_scores(len(self.nodes), query, postings), n, mask)

    def document_frequencies(self) -> tuple[dict[str, int], int]:
        indptr = self.bm25.scores["indptr"]
        out = {}
        for term, col in self.bm25.vocab_dict.items():
            if col + 1 < len(indptr):  # bm25s' placeholder for empty documents has no column
                out[term] = int(indptr[col + 1] - indptr[col])
        return out, int(self.bm25.scores.get("num_docs", 0))

    def has_term(self, term: str) -> bool:
        return term in self.bm25.vocab_dict

    def node_by_id(self, node_id: str) -> TextNode | None:
        return self._by_id.get(node_id)

    def sentences_of(self, node_ids: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        return {node_id: self._sentences_by_id.get(node_id, []) for node_id in node_ids}

    @cached_property
    def _by_id(self) -> dict[str, TextNode]:
        return {node.node_id: node for node in self.nodes}

    @cached_property
    def _sentences_by_id(self) -> dict[str, list[tuple[int, int, int]]]:
        out: dict[str, list[tuple[int, int, int]]] = {}
        for row, (node_row, start, end) in enumerate(self.sentence_spans):
            out.setdefault(self.nodes[node_row].node_id, []).append((start, end, row))
        return out

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of the query vector to every chunk (exact search)."""
        if self._chunk_matrix is not None:
            return self._chunk_matrix @ vector
        n = self.dense.ntotal
        scores, ids = self.dense.search(vector[None, :], n)
        out = np.full(n, -1.0, dtype=np.float32)
        valid = ids[0] >= 0
        out[ids[0][valid]] = scores[0][valid]
        return out

    def sentence_scores(self, vector: np.ndarray) -> np.ndarray:
        """Per chunk, the cosine similarity of the query vector to the chunk's closest sentence."""
        out = np.full(len(self.nodes), -1.0, dtype=np.float32)
        if len(self._sentence_nodes):
            similarities = self._sentence_matrix @ vector
            out[self._sentence_nodes] = np.maximum.reduceat(similarities, self._sentence_starts)
        return out

    def scores_of(
        self, vector: np.ndarray, terms: list[str], rows: list[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        wanted = np.asarray(rows, dtype=np.int64)
        if self._chunk_matrix is not None:
            chunks = self._chunk_matrix[wanted] @ vector
        else:
            chunks = self.dense.reconstruct_batch(wanted) @ vector
        sentences = np.full(len(wanted), -1.0, dtype=np.float32)
        at = np.searchsorted(self._sentence_nodes, wanted)
        for i, (row, j) in enumerate(zip(wanted, at)):
            if j < len(self._sentence_nodes) and self._sentence_nodes[j] == row:
                sentences[i] = float(
                    (self._sentence_matrix[self._sentence_starts[j] : self._sentence_ends[j]] @ vector).max()
                )
        lexical = self.bm25_scores(terms)[wanted] if terms else np.zeros(len(wanted), dtype=np.float32)
        return chunks.astype(np.float32), sentences, lexical

    def sentence_moments(self) -> tuple[np.ndarray, np.ndarray]:
        cached = self.__dict__.get("_moments")
        if cached is None:
            cached = self.__dict__["_moments"] = sentence_moments(self._sentence_matrix, self.sentences.d)
        return cached

    def bm25_scores(self, terms: list[str]) -> np.ndarray:
        terms = [t for t in terms if t in self.bm25.vocab_dict]
        if not terms:
            return np.zeros(len(self.nodes), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(terms), dtype=np.float32)

    def rankings(
        self, vector: np.ndarray, terms: list[str] | None, docs: list[str] | None, n: int, latent: Any = None
    ) -> Rankings:
        mask = None if not docs else np.isin(self._doc_of, list(docs))

        def top(scores: np.ndarray, matching_only: bool = False) -> Ranking:
            ranked = np.argsort(-scores, kind="stable")
            if mask is not None:
                ranked = ranked[mask[ranked]]
            if matching_only:
                ranked = ranked[scores[ranked] > 0]
            ranked = ranked[:n]
            return Ranking(ranked.astype(np.int64), scores[ranked].astype(np.float32))

        if not self.nodes:
            return Rankings(Ranking.empty(), Ranking.empty(), None if terms is None else Ranking.empty())
        lexical = None if terms is None else top(self.bm25_scores(terms), matching_only=True)
        latent_ranking = None if latent is None or self.latent is None else self.latent_ranking(latent, n, mask)
        if self.approximate and mask is None:  # a document filter is ranked exactly within its documents
            chunks, sentences = self._approximate_chunks(vector, n), self._approximate_sentences(vector, n)
        else:
            chunks, sentences = top(self.dense_scores(vector)), top(self.sentence_scores(vector))
        return Rankings(chunks, sentences, lexical, latent_ranking)

    def _approximate_chunks(self, vector: np.ndarray, n: int) -> Ranking:
        scores, ids = self.dense.search(vector[None, :], n)
        keep = ids[0] >= 0
        return _by_score_then_row(ids[0][keep], scores[0][keep], n)

    def _approximate_sentences(self, vector: np.ndarray, n: int) -> Ranking:
        """The best sentences from HNSW, grouped to their chunk's best: the first n distinct chunks."""
        want = min(self.sentences.ntotal, max(4 * n, int(n * 2 * len(self.sentence_spans) / max(len(self.nodes), 1))))
        scores, ids = self.sentences.search(vector[None, :], want)
        keep = ids[0] >= 0
        nodes = self._sentence_node_of[ids[0][keep]]
        best: dict[int, float] = {}
        for node, score in zip(nodes.tolist(), scores[0][keep].tolist()):
            best.setdefault(node, score)  # results come best first
        return _by_score_then_row(np.array(list(best), dtype=np.int64), np.array(list(best.values())), n)


def _is_hnsw(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexHNSW)


def _by_score_then_row(rows: np.ndarray, scores: np.ndarray, n: int) -> Ranking:
    order = np.lexsort((rows, -np.asarray(scores, dtype=np.float32)))[:n]  # ties by row, as a stable sort
    return Ranking(rows[order].astype(np.int64), np.asarray(scores, dtype=np.float32)[order])


def bm25_from_terms(terms: list[list[str]]) -> Any:
    """The BM25 index (bm25s) over each chunk's content-word terms."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG
    bm25 = bm25s.BM25()
    bm25.index([t or [EMPTY_TERM] for t in terms], show_progress=False)
    return bm25


class FaissStore(Store):
    """Versions as directories under `root`, `CURRENT` naming the live one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def current(self) -> str | None:
        pointer = self.root / POINTER
        if not pointer.is_file():
            return None
        try:
            return current_version(self.root).name
        except IndexLoadError:  # damaged: `read` says how; the raw pointer still keys caches
            return pointer.read_text(encoding="utf-8", errors="replace").strip()

    def read(self) -> StoredIndex:
        return read_index(self.root)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """A file lock: one ingest at a time per index directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".ingest.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def cached_vectors(self, embedder: str, keys: list[str]) -> dict[str, np.ndarray]:
        return {}  # the previous version is the only cache; ingest reads it from there

    def write(
        self,
        manifest: Manifest,
        nodes: list[TextNode],
        vectors: np.ndarray,
        terms: list[list[str]],
        sentence_vectors: np.ndarray,
        latent: Any = None,
    ) -> str:
        bm25 = bm25_from_terms(terms)
        return str(write_index(self.root, manifest, nodes, vectors, bm25, sentence_vectors, latent))


_VERSION_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")  # what _new_version_id makes; CURRENT must hold one


def _new_version_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _flat_index(dim: int, vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product search; HNSW from HNSW_MIN_VECTORS on, where exact search grows too slow."""
    if len(vectors) >= HNSW_MIN_VECTORS:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_index(
    root: Path,
    manifest: Manifest,
    nodes: list[TextNode],
    vectors: np.ndarray,
    bm25: Any,
    sentence_vectors: np.ndarray,
    latent: Any = None,
) -> Path:
    """Write a new version and make it current atomically; return its directory.

    `latent` (CSR, one row per chunk) is written only when the manifest names the head that made it.
    """
    versions = root / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    version_id = _new_version_id()
    tmp = versions / f".tmp-{version_id}"
    tmp.mkdir()
    try:
        manifest.created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest.counts = {"files": len(manifest.files), "chunks": len(nodes), "sentences": len(sentence_vectors)}
        if manifest.latent and latent is not None:
            manifest.counts["latent_dim"] = int(latent.shape[1])
        faiss.write_index(_flat_index(manifest.dim, vectors), str(tmp / "dense.faiss"))
        faiss.write_index(_flat_index(manifest.dim, sentence_vectors), str(tmp / "sentences.faiss"))
        with open(tmp / "nodes.jsonl", "w", encoding="utf-8") as f:
            for node in nodes:
                f.write(json.dumps(node.to_dict(), ensure_ascii=False) + "\n")
        bm25.save(str(tmp / "bm25"), show_progress=False)
        if manifest.latent:
            if latent is None or latent.shape[0] != len(nodes):
                raise ValueError(f"manifest names latent head {manifest.latent!r} but no vector for every chunk")
            scipy.sparse.save_npz(tmp / "latent.npz", latent.tocsr().astype(np.float32))
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        _fsync_dir(tmp)
        final = versions / version_id
        os.replace(tmp, final)
        pointer_tmp = root / f".{POINTER}.{version_id}"
        pointer_tmp.write_text(version_id, encoding="utf-8")
        os.replace(pointer_tmp, root / POINTER)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(versions, keep={version_id})
    return final


def _fsync_dir(path: Path) -> None:
    for p in [*path.iterdir(), path] if path.is_dir() else [path]:
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _prune(versions: Path, keep: set[str]) -> None:
    """Delete abandoned temp dirs and all but the newest KEEP_OLD_VERSIONS old versions."""
    old = sorted((p for p in versions.iterdir() if p.name not in keep), key=lambda p: p.name, reverse=True)
    finished = [p for p in old if not p.name.startswith(".tmp-")]
    for p in finished[KEEP_OLD_VERSIONS:] + [p for p in old if p.name.startswith(".tmp-")]:
        shutil.rmtree(p, ignore_errors=True)


def current_version(root: Path) -> Path:
    pointer = root / POINTER
    if not pointer.is_file():
        raise IndexLoadError(f"no index at {root}: run `rag ingest` to build it")
    version_id = pointer.read_text(encoding="utf-8", errors="replace").strip()
    if not _VERSION_ID.fullmatch(version_id):  # also keeps a tampered pointer inside the index dir
        raise IndexLoadError(f"index pointer {pointer} is invalid ({version_id[:40]!r}): run `rag ingest --rebuild`")
    path = root / VERSIONS / version_id
    if not path.is_dir():
        raise IndexLoadError(f"index at {root} points to a missing version: run `rag ingest --rebuild`")
    return path


def _read_manifest(version: Path) -> Manifest:
    """The manifest of one version directory, checked for a format this code can read."""
    root = version.parent.parent
    path = version / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = int(data.get("format_version", 0))
    except (OSError, ValueError, AttributeError) as exc:
        raise IndexLoadError(f"index manifest {path} is unreadable ({exc}): run `rag ingest --rebuild`") from exc
    if version > FORMAT_VERSION:
        raise IndexLoadError(
            f"index at {root} was written by a newer seisaku-qa (format {version} > {FORMAT_VERSION}): "
            "upgrade seisaku-qa or run `rag ingest --rebuild`"
        )
    if version < FORMAT_VERSION:
        raise IndexLoadError(f"index at {root} has old format {version}: run `rag ingest --rebuild`")
    try:
        return Manifest(**data)
    except TypeError as exc:
        raise IndexLoadError(f"index manifest {path} is invalid ({exc}): run `rag ingest --rebuild`") from exc


def read_index(root: Path) -> StoredIndex:
    """Load the current version; any damage becomes an IndexLoadError naming the fix."""
    import bm25s

    path = current_version(root)  # resolved once: a concurrent swap must not mix two versions
    manifest = _read_manifest(path)
    try:
        with open(path / "nodes.jsonl", encoding="utf-8") as f:
            nodes = [TextNode.from_dict(json.loads(line)) for line in f if line.strip()]
        dense = faiss.read_index(str(path / "dense.faiss"))
        sentences = faiss.read_index(str(path / "sentences.faiss"))
        bm25 = bm25s.BM25.load(str(path / "bm25"), load_corpus=False)
        latent = scipy.sparse.load_npz(path / "latent.npz").tocsr() if manifest.latent else None
    except Exception as exc:  # noqa: BLE001 - every kind of damage gets the same advice
        raise IndexLoadError(
            f"index at {path} is damaged ({type(exc).__name__}: {exc}): run `rag ingest --rebuild`"
        ) from exc
    if not (len(nodes) == dense.ntotal == manifest.counts.get("chunks", -1)) or dense.d != manifest.dim:
        raise IndexLoadError(
            f"index at {path} is inconsistent ({len(nodes)} chunks, {dense.ntotal} vectors, "
            f"manifest says {manifest.counts.get('chunks')}): run `rag ingest --rebuild`"
        )
    spans = node_sentences(nodes)
    if sentences.d != manifest.dim or not sentences.ntotal == len(spans) == manifest.counts.get("sentences", -1):
        raise IndexLoadError(
            f"index at {path} is inconsistent ({sentences.ntotal} sentence vectors for "
            f"{len(spans)} sentences): run `rag ingest --rebuild`"
        )
    if latent is not None and latent.shape[0] != len(nodes):
        raise IndexLoadError(
            f"index at {path} is inconsistent ({latent.shape[0]} latent-term vectors for {len(nodes)} chunks): "
            "run `rag ingest --rebuild`"
        )
    return StoredIndex(path, manifest, nodes, dense, bm25, sentences, spans, latent)
