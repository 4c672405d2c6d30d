"""Embed chunks and their sentences (and the chunks' latent terms), reusing vectors of texts already embedded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import TextNode
from tqdm import tqdm

from ingest.split import content_hash, search_text
from rag.store import node_sentences
from rag.text import normalize

ProgressCallback = Callable[[int, int], None]


def sentence_texts(nodes: list[TextNode]) -> list[str]:
    """What is embedded for each sentence, in the index's sentence order."""
    return [normalize(nodes[row].get_content()[start:end]) for row, start, end in node_sentences(nodes)]


def sentence_cache(nodes: list[TextNode], vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Sentence vectors of a previous index, keyed like `embed_texts` keys them."""
    return {content_hash(text): vectors[i] for i, text in enumerate(sentence_texts(nodes))}


def _missing(keys: list[str], cache: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    """(key, first row) of each distinct text not in the cache, in row order."""
    return sorted({k: i for i, k in enumerate(keys) if k not in cache}.items(), key=lambda kv: kv[1])


def count_missing(texts: list[str], cache: dict[str, np.ndarray]) -> int:
    return len(_missing([content_hash(t) for t in texts], cache))


def _fill(
    texts: list[str],
    keys: list[str],
    cache: dict[str, Any],
    encode: Callable[[list[str]], list[Any]],
    batch: int,
    desc: str,
    unit: str,
    progress: bool,
    on_progress: ProgressCallback | None,
) -> int:
    """Put `encode`'s value of every text whose key is not in `cache` into it, a batch at a time; how many."""
    missing = _missing(keys, cache)
    bar = tqdm(total=len(missing), desc=desc, unit=unit, disable=not progress or not missing)
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        for (key, _), value in zip(part, encode([texts[i] for _, i in part])):
            cache[key] = value
        bar.update(len(part))
        if on_progress:
            on_progress(min(start + batch, len(missing)), len(missing))
    bar.close()
    return len(missing)


def embed_texts(
    texts: list[str],
    embedder: BaseEmbedding,
    dim: int,
    cache: dict[str, np.ndarray],
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
    unit: str = "chunk",
) -> tuple[np.ndarray, int]:
    """Passage vectors for `texts` in order, and how many had to be computed (the rest came from `cache`).

    The cache key is the hash of exactly what is embedded, so only new or changed
    texts are embedded. `on_progress(done, total)` is called after each batch.
    """
    keys = [content_hash(t) for t in texts]

    def encode(batch: list[str]) -> list[np.ndarray]:
        return [np.asarray(v, dtype=np.float32) for v in embedder.get_text_embedding_batch(batch)]

    computed = _fill(
        texts, keys, cache, encode, embedder.embed_batch_size, f"embedding {unit}s", unit, progress, on_progress
    )
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = cache[key]
    return out, computed


def embed_nodes(
    nodes: list[TextNode],
    embedder: BaseEmbedding,
    dim: int,
    cache: dict[str, np.ndarray],
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, int]:
    """Chunk vectors (of title, section and text), recording each chunk's `content_hash`."""
    texts = [search_text(n) for n in nodes]
    for node, text in zip(nodes, texts):
        node.metadata["content_hash"] = content_hash(text)
    return embed_texts(texts, embedder, dim, cache, progress, on_progress)


LatentVector = tuple[np.ndarray, np.ndarray]  # (feature ids int32, weights float32)


def latent_text(node: TextNode) -> str:
    """What the latent-terms head reads of a chunk: its text as stored (the head takes no title or prefix)."""
    return node.get_content()


def csr_rows(matrix: Any) -> list[LatentVector]:
    """Each row of a sparse matrix as (feature ids, weights)."""
    matrix = matrix.tocsr()
    spans = zip(matrix.indptr[:-1], matrix.indptr[1:])
    return [(matrix.indices[a:b].astype(np.int32), matrix.data[a:b].astype(np.float32)) for a, b in spans]


def rows_csr(rows: list[LatentVector], dim: int) -> Any:
    """(feature ids, weights) rows as a CSR matrix of `dim` columns, indices sorted."""
    indptr = np.cumsum([0] + [len(ids) for ids, _ in rows])
    indices = np.concatenate([ids for ids, _ in rows]) if rows else np.zeros(0, np.int32)
    data = np.concatenate([w for _, w in rows]) if rows else np.zeros(0, np.float32)
    matrix = scipy.sparse.csr_matrix(
        (data.astype(np.float32), indices.astype(np.int32), indptr), shape=(len(rows), dim)
    )
    matrix.sort_indices()
    return matrix


def latent_cache(nodes: list[TextNode], latent: Any) -> dict[str, LatentVector]:
    """Latent-term vectors of a previous index (CSR rows), keyed like `latent_nodes` keys them."""
    return {content_hash(latent_text(node)): row for node, row in zip(nodes, csr_rows(latent))}


def latent_nodes(
    nodes: list[TextNode],
    embedder: Any,
    cache: dict[str, LatentVector],
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> tuple[Any, int]:
    """The chunks' latent-term vectors (CSR, one row per chunk) and how many were computed, as `embed_texts`."""
    texts = [latent_text(n) for n in nodes]
    keys = [content_hash(t) for t in texts]

    def encode(batch: list[str]) -> list[LatentVector]:
        return csr_rows(embedder.latent_terms(batch))

    computed = _fill(
        texts, keys, cache, encode, embedder.embed_batch_size, "latent terms", "chunk", progress, on_progress
    )
    return rows_csr([cache[key] for key in keys], embedder.latent_dim), computed
