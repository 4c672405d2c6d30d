"""The store interface: what ingest writes and what retrieval reads, whichever backend holds it.

A store holds versions of the index; one is live. Ingest writes a complete new
version and makes it live in one step; a reader opens one version (a snapshot)
and keeps reading it, so it sees the old corpus or the new one, never a mix.

A snapshot gives the query side the chunks (as llama-index nodes, by row, by id
or by document), the rankings that `rag.retrieve` fuses (dense chunk, dense
best sentence per chunk, lexical, and latent terms when the index has them) as
node rows with scores, the sentences of given
chunks and their vectors by row, and the term statistics the answer side weighs
words by. Everything is asked for by row or id, so a database store serves a query
without the process holding the corpus.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
from llama_index.core.schema import TextNode

from rag.text import sentence_spans

FORMAT_VERSION = 2  # 2: sentence vectors
EMPTY_TERM = "\u0000"  # stands for a chunk with no content words, so every chunk has a length


class IndexLoadError(RuntimeError):
    """The index cannot be used; the message says why and what to run."""


class StoreUnavailable(IndexLoadError):
    """The store's server cannot be reached (after retrying); the message names it, never its credentials."""


@dataclass
class Manifest:
    embedder: str
    dim: int
    chunker: dict[str, Any]
    tokenizer: str
    files: dict[str, dict[str, Any]]
    skipped: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    created_at: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    # the head that made the chunks' latent-term vectors (an embedder's `latent_head`); "" = none: three rankings
    latent: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


@dataclass
class Ranking:
    """Node rows, best first, with the score each was ranked by."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32

    @classmethod
    def empty(cls) -> Ranking:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Rankings:
    """The rankings of one query; `lexical` / `latent` are None when the query was not ranked that way."""

    chunk: Ranking
    sentence: Ranking
    lexical: Ranking | None
    latent: Ranking | None = None


def top_matching(scores: np.ndarray, n: int, allowed: np.ndarray | None = None) -> Ranking:
    """The n best rows with a positive score (only `allowed` rows when given), ties by row as a stable sort."""
    found = np.flatnonzero(scores > 0)
    if allowed is not None:
        found = found[allowed[found]]
    top = found[np.lexsort((found, -scores[found]))][:n]
    return Ranking(top.astype(np.int64), scores[top].astype(np.float32))


Postings = Callable[[int], "tuple[np.ndarray, np.ndarray] | None"]  # feature -> (chunk rows, weights), or None


def latent_scores(n_rows: int, query: Any, postings: Postings) -> np.ndarray:
    """Dot products of a query's latent-term vector (1 x dim CSR) with every chunk's, from per-feature postings.

    `postings(feature)` gives (chunk rows, weights) of one feature, or None. Summed in float32 in the query's
    feature order, so the embedded store and the database rank (and break ties) alike.
    """
    scores = np.zeros(n_rows, dtype=np.float32)
    for feature, weight in zip(query.indices.tolist(), query.data.tolist()):
        found = postings(int(feature))
        if found is not None:
            rows, weights = found
            scores[rows] += np.float32(weight) * weights.astype(np.float32)
    return scores


def node_sentences(nodes: Sequence[TextNode]) -> list[tuple[int, int, int]]:
    """(node row, start, end) of every sentence, in the order sentence vectors are stored."""
    return [(row, start, end) for row, node in enumerate(nodes) for start, end in sentence_spans(node.get_content())]


class Moments:
    """Running (mean, mean outer product) of vectors in float64, taken in blocks (bounded memory, streams)."""

    BLOCK = 8192

    def __init__(self, dim: int) -> None:
        self.dim, self.count, self._buffer = dim, 0, []
        self._sum, self._second = np.zeros(dim), np.zeros((dim, dim))

    def add(self, vector: np.ndarray) -> None:
        self._buffer.append(vector)
        if len(self._buffer) >= self.BLOCK:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            block = np.asarray(self._buffer, dtype=np.float64).reshape(-1, self.dim)
            self._sum += block.sum(axis=0)
            self._second += block.T @ block
            self.count += len(block)
            self._buffer = []

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        count = max(self.count, 1)
        return self._sum / count, self._second / count


def sentence_moments(vectors: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, mean outer product) of row vectors: what `IndexSnapshot.sentence_cosine_stats` reads."""
    moments = Moments(dim)
    for vector in vectors:
        moments.add(vector)
    return moments.result()


def lines_of_span(line_runs: list[list[int]], start: int, end: int) -> tuple[int, int]:
    """Source line span (from a node's `line_runs` metadata) of chunk characters [start, end)."""
    first = last = line_runs[0][1]
    for offset, line in line_runs:
        if offset <= start:
            first = line
        if offset < end:
            last = line
    return first, max(first, last)


def bm25_idf(df: int, n_docs: int) -> float:
    """The Lucene BM25 idf (what bm25s ranks by), also the answer side's term weight."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


class IndexSnapshot(ABC):
    """One version of the index, read-only; safe to share across threads."""

    manifest: Manifest
    nodes: Sequence[TextNode]  # by row; a database store fetches them on demand
    path: PurePath  # where the version lives; `.name` is the version id

    @property
    @abstractmethod
    def version(self) -> str:
        """The version id (changes with every ingest that changed something)."""

    @abstractmethod
    def rankings(
        self, vector: np.ndarray, terms: list[str] | None, docs: list[str] | None, n: int, latent: Any = None
    ) -> Rankings:
        """Top `n` rows of each ranking for a query vector, (if not None) its lexical terms and latent-term vector.

        Only chunks of `docs` (file names) when given; the lexical and latent rankings
        hold only chunks that share a term with the query. Ties are broken by row, as a
        stable sort would. `latent` (1 x dim CSR) is ranked only when the index has latent vectors.
        """

    def latent_vectors(self) -> Any:
        """The chunks' latent-term vectors (CSR, one row per chunk), or None when the index has none."""
        return None

    def nodes_at(self, rows: Iterable[int]) -> list[TextNode]:
        """The chunks at these rows, in order (one fetch for a database store)."""
        return [self.nodes[int(r)] for r in rows]

    @abstractmethod
    def node_by_id(self, node_id: str) -> TextNode | None:
        """The chunk with this id (a neighbour named by a node's relationships), or None."""

    @abstractmethod
    def sentences_of(self, node_ids: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        """Node id → (start, end, sentence vector row) of each of its sentences, for the given chunks."""

    @abstractmethod
    def scores_of(
        self, vector: np.ndarray, terms: list[str], rows: list[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact (chunk cosine, best-sentence cosine, lexical score) of the given rows.

        The signals of a hit that one ranking did not reach in its top `n`.
        """

    @abstractmethod
    def sentence_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean sentence vector, mean outer product of sentence vectors), float64; see `sentence_moments`."""

    def sentence_cosine_stats(self, vector: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of the query's cosine over every sentence, exactly.

        From the sentence vectors' first two moments: O(d²) per query whatever the
        corpus size, so a database store need not hold or scan every sentence.
        """
        mean, second = self.sentence_moments()
        q = vector.astype(np.float64)
        m = float(mean @ q)
        return m, math.sqrt(max(float(q @ second @ q) - m * m, 0.0))

    @abstractmethod
    def sentence_vectors(self) -> Any:
        """Sentence vectors indexable by row lists (`vectors[[3, 4]]` → array), in `node_sentences` order."""

    @abstractmethod
    def vectors(self) -> np.ndarray:
        """Every chunk vector in row order (ingest's cache, benchmarks)."""

    @abstractmethod
    def document_frequencies(self) -> tuple[dict[str, int], int]:
        """(term → number of chunks containing it, number of chunks) as the lexical ranking counts them."""

    def has_term(self, term: str) -> bool:
        return term in self._vocabulary()

    def _vocabulary(self) -> dict[str, int]:
        cached = self.__dict__.get("_df")
        if cached is None:
            cached = self.__dict__["_df"] = self.document_frequencies()[0]
        return cached

    def idf(self) -> dict[str, float]:
        """Term weights from the document frequencies (no re-tokenizing at load)."""
        df, n_docs = self.document_frequencies()
        n_docs = max(n_docs, 1)
        return {term: bm25_idf(count, n_docs) for term, count in df.items()}


class Store(ABC):
    """Where the versions live: a directory of files, or a database."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where, for messages: never includes credentials."""

    @abstractmethod
    def current(self) -> str | None:
        """The live version id, or None when nothing was ingested yet (cheap: for cache keys)."""

    @abstractmethod
    def read(self) -> IndexSnapshot:
        """The live version; IndexLoadError naming the fix when there is none or it is damaged."""

    @abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """Held by an ingest from reading the previous version to making the new one live."""

    @abstractmethod
    def cached_vectors(self, embedder: str, keys: list[str]) -> dict[str, np.ndarray]:
        """Vectors this store already holds for these content hashes (embedded by `embedder`).

        Items set on the returned dict may be stored for other ingests at once (call `flush` if it has one).
        """

    def cached_latent(self, head: str, keys: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Latent-term vectors (feature ids, weights) this store already holds for these content hashes.

        As `cached_vectors`; a store without a shared cache returns an empty dict (ingest reads the previous version).
        """
        return {}

    @abstractmethod
    def write(
        self,
        manifest: Manifest,
        nodes: list[TextNode],
        vectors: np.ndarray,
        terms: list[list[str]],
        sentence_vectors: np.ndarray,
        latent: Any = None,
    ) -> str:
        """Write a complete new version (chunk vectors, per-chunk terms, sentence vectors, latent-term vectors
        as CSR or None) and make it live.

        Returns where it was written, for messages.
        """

    shares_vectors = False  # True: `cached_vectors` finds every vector any ingest stored, not just the live ones

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        return None
