"""Embed chunks, reusing vectors of chunks whose text was already embedded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import TextNode
from tqdm import tqdm

from ingest.split import content_hash, search_text


def embed_nodes(
    nodes: list[TextNode],
    embedder: BaseEmbedding,
    dim: int,
    cache: dict[str, np.ndarray],
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `nodes` in order, and how many had to be computed (the rest came from `cache`).

    The cache key is the hash of exactly what is embedded, so a chunk whose
    text, title or section changed is embedded again, and nothing else is.
    `on_progress(done, total)` is called after each batch (the app's progress bar).
    """
    texts = [search_text(n) for n in nodes]
    keys = [content_hash(t) for t in texts]
    for node, key in zip(nodes, keys):
        node.metadata["content_hash"] = key
    missing = sorted({k: i for i, k in enumerate(keys) if k not in cache}.items(), key=lambda kv: kv[1])
    batch = embedder.embed_batch_size
    bar = tqdm(total=len(missing), desc="embedding", unit="chunk", disable=not progress or not missing)
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        vectors = embedder.get_text_embedding_batch([texts[i] for _, i in part])
        for (key, _), vector in zip(part, vectors):
            cache[key] = np.asarray(vector, dtype=np.float32)
        bar.update(len(part))
        if on_progress:
            on_progress(min(start + batch, len(missing)), len(missing))
    bar.close()
    out = np.zeros((len(nodes), dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = cache[key]
    return out, len(missing)
