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
    missing = _missing(keys, cache)
    batch = embedder.embed_batch_size
    bar = tqdm(total=len(missing), desc=f"embedding {unit}s", unit=unit, disable=not progress or not missing)
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        vectors = embedder.get_text_embedding_batch([texts[i] for _, i in part])
        for (key, _), vector in zip(part, vectors):
            cache[key] = np.asarray(vector, dtype=np.float32)
        bar.update(len(part))
        if on_progress:
            on_progress(min(start + batch, len(missing)), len(missing))
    bar.close()
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = cache[key]
    return out, len(missing)


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


def latent_cache(nodes: list[TextNode], latent: Any) -> dict[str, LatentVector]:
    """Latent-term vectors of a previous index (CSR rows), keyed like `latent_nodes` keys them."""
    latent = latent.tocsr()
    out = {}
    for row, node in enumerate(nodes):
        start, end = latent.indptr[row], latent.indptr[row + 1]
        out[content_hash(latent_text(node))] = (latent.indices[start:end].copy(), latent.data[start:end].copy())
    return out


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
    missing = _missing(keys, cache)
    batch = embedder.embed_batch_size
    bar = tqdm(total=len(missing), desc="latent terms", unit="chunk", disable=not progress or not missing)
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        computed = embedder.latent_terms([texts[i] for _, i in part]).tocsr()
        for j, (key, _) in enumerate(part):
            begin, end = computed.indptr[j], computed.indptr[j + 1]
            cache[key] = (computed.indices[begin:end].copy(), computed.data[begin:end].copy())
        bar.update(len(part))
        if on_progress:
            on_progress(min(start + batch, len(missing)), len(missing))
    bar.close()
    rows = [cache[key] for key in keys]
    indptr = np.cumsum([0] + [len(ids) for ids, _ in rows])
    indices = np.concatenate([ids for ids, _ in rows]) if rows else np.zeros(0, np.int32)
    data = np.concatenate([w for _, w in rows]) if rows else np.zeros(0, np.float32)
    shape = (len(nodes), embedder.latent_dim)
    matrix = scipy.sparse.csr_matrix((data.astype(np.float32), indices.astype(np.int32), indptr), shape=shape)
    matrix.sort_indices()
    return matrix, len(missing)
