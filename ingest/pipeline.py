"""Incremental ingest: load → clean → split → embed → index, redoing only what changed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llama_index.core.schema import TextNode

from ingest.clean import CLEANER_VERSION, CleanDoc, clean_document
from ingest.embed import (
    count_missing,
    embed_nodes,
    embed_texts,
    latent_cache,
    latent_nodes,
    latent_text,
    sentence_cache,
    sentence_texts,
)
from ingest.index import corpus_terms
from ingest.load import (
    LoadError,
    SourceText,
    check_inside,
    discover,
    parse_source,
    read_source,
    supported_suffixes,
)
from ingest.split import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MIN_CHARS,
    SPLITTER_VERSION,
    content_hash,
    search_text,
    split_document,
)
from rag.config import set_threads
from rag.embedders import DEFAULT_EMBEDDER, load_embedder
from rag.store import IndexLoadError, IndexSnapshot, Manifest, Store, open_store
from rag.text import default_tokenizer

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    files: int = 0
    chunks: int = 0
    embedded: int = 0  # chunks whose vectors were computed this run
    reused: int = 0  # chunks whose vectors came from the previous index
    sentences: int = 0
    sentences_embedded: int = 0
    latent_embedded: int = 0  # chunks whose latent-term vectors were computed this run
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    unchanged: bool = False
    index_path: str = ""

    def lines(self) -> list[str]:
        head = "index unchanged" if self.unchanged else f"index written to {self.index_path}"
        out = [
            f"{head}: {self.files} files, {self.chunks} chunks "
            f"({self.embedded} embedded, {self.reused} reused), {self.sentences} sentences "
            f"({self.sentences_embedded} embedded) in {self.seconds:.1f} s"
        ]
        if self.latent_embedded:
            out.append(f"latent terms computed for {self.latent_embedded} chunks")
        if self.changed:
            out.append("changed: " + ", ".join(self.changed))
        if self.removed:
            out.append("removed: " + ", ".join(self.removed))
        out += [f"skipped {name}: {reason}" for name, reason in sorted(self.skipped.items())]
        return out


class NothingToIndexError(LoadError):
    """No file under the given paths could be indexed; the previous index, if any, stays in use."""

    def __init__(self, paths: list[Path], skipped: dict[str, str]) -> None:
        self.skipped = dict(skipped)
        where = ", ".join(str(p) for p in paths) or "(no path)"
        missing = [str(p) for p in paths if not p.exists()]
        if skipped:
            reasons = "; ".join(f"{name}: {reason}" for name, reason in sorted(skipped.items()))
            message = f"nothing to index in {where}: every file was skipped ({reasons})"
        elif missing:
            message = f"nothing to index: {', '.join(missing)} does not exist"
        else:
            message = f"nothing to index: no supported file in {where} (supported: {', '.join(supported_suffixes())})"
        super().__init__(message)


@dataclass
class IngestConfig:
    embedder: str = DEFAULT_EMBEDDER
    max_chars: int = DEFAULT_MAX_CHARS
    min_chars: int = DEFAULT_MIN_CHARS

    def chunker(self) -> dict:
        return {
            "cleaner": CLEANER_VERSION,
            "splitter": SPLITTER_VERSION,
            "max_chars": self.max_chars,
            "min_chars": self.min_chars,
        }


def split_source(path: Path, data: bytes, config: IngestConfig) -> tuple[SourceText, CleanDoc, list[TextNode]]:
    """One file's bytes → decoded text → cleaned document → chunks; LoadError when nothing is left."""
    source = parse_source(path, data)
    doc = clean_document(source.name, source.text, source.line_pages)
    nodes = split_document(doc, config.max_chars, config.min_chars)
    if not nodes:
        raise LoadError("no text left after cleaning")
    return source, doc, nodes


def stale_reason(manifest: Manifest, config: IngestConfig | None = None) -> str | None:
    """Why an index that loads fine no longer matches what `rag ingest` would build now, or None.

    The query side can serve such an index; the app and CLI show this so the operator re-ingests.
    """
    config = config or IngestConfig()
    if manifest.embedder != config.embedder:
        return f"built with embedder {manifest.embedder}, default is {config.embedder}"
    if manifest.chunker != config.chunker():
        return f"built with chunker {manifest.chunker}, this version chunks as {config.chunker()}"
    if manifest.tokenizer != default_tokenizer().name:
        return f"built with tokenizer {manifest.tokenizer}, this version uses {default_tokenizer().name}"
    if not manifest.latent and config.embedder == DEFAULT_EMBEDDER:
        return "built without latent terms (the fourth ranking), which this version adds"
    return None


def _previous(store: Store, config: IngestConfig, rebuild: bool) -> tuple[IndexSnapshot | None, IndexSnapshot | None]:
    """(index whose chunks can be reused, index whose vectors can be reused).

    Chunks are reusable only with the same chunker and tokenizer; vectors
    (keyed by the hash of what was embedded) whenever the embedder is the same.
    """
    if rebuild:
        return None, None
    try:
        previous = store.read()
    except IndexLoadError as exc:
        if store.current() is not None:
            log.warning("previous index not reusable, rebuilding: %s", exc)
        return None, None
    m = previous.manifest
    if m.embedder != config.embedder:
        log.info("embedder changed: re-embedding everything")
        return None, None
    if m.chunker != config.chunker() or m.tokenizer != default_tokenizer().name:
        log.info("chunker changed: re-chunking every file (unchanged chunks keep their vectors)")
        return None, previous
    return previous, previous


def copy_vectors(source: IndexSnapshot, store: Store) -> int:
    """Put the vectors of another store's live version into `store`'s shared cache (moving to a database
    without re-embedding); returns how many."""
    cache = store.cached_vectors(source.manifest.embedder, [])
    nodes = list(source.nodes)
    chunk_vectors = {n.metadata["content_hash"]: v for n, v in zip(nodes, source.vectors())}
    sentence_vectors = source.sentence_vectors()
    known = sentence_cache(nodes, sentence_vectors[list(range(len(sentence_vectors)))])
    for key, vector in {**chunk_vectors, **known}.items():
        cache[key] = vector
    getattr(cache, "flush", lambda: None)()
    latent = source.latent_vectors()
    if latent is None:
        return len(chunk_vectors) + len(known)
    latent_vectors = store.cached_latent(source.manifest.latent, [])
    for key, vector in latent_cache(nodes, latent).items():
        latent_vectors[key] = vector
    getattr(latent_vectors, "flush", lambda: None)()
    return len(chunk_vectors) + len(known) + latent.shape[0]


def ingest(
    paths: list[Path],
    index_root: Path | str | Store | None,
    config: IngestConfig | None = None,
    rebuild: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Bring the index at `index_root` (a directory, a `postgresql://…` URL or a Store) up to date.

    One ingest at a time per index: a second one (another process, or the app's
    re-index button in two sessions) waits, then finds the index up to date.
    `on_progress(done, total)` reports embedding progress.
    """
    store = open_store(index_root)
    set_threads("ingest")
    with store.lock():
        return _ingest(paths, store, config or IngestConfig(), rebuild, progress, on_progress)


def _ingest(
    paths: list[Path],
    store: Store,
    config: IngestConfig,
    rebuild: bool,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> IngestSummary:
    started = time.perf_counter()
    summary = IngestSummary()
    previous, vector_source = _previous(store, config, rebuild)
    old_files = previous.manifest.files if previous else {}

    files: dict[str, dict] = {}
    nodes_by_file: dict[str, list[TextNode]] = {}
    seen_hashes: dict[str, str] = {}
    roots = [p for p in paths if p.is_dir()]
    for path in discover(paths):
        name = path.name
        try:
            check_inside(path, roots)
            if name in files:
                raise LoadError(f"same file name as {files[name]['path']}")
            data = read_source(path)  # read once: the hash and the text come from the same bytes
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen_hashes:
                raise LoadError(f"duplicate of {seen_hashes[digest]}")
            if previous and old_files.get(name, {}).get("sha256") == digest:
                files[name] = dict(old_files[name], path=str(path))
                seen_hashes[digest] = name
                continue
            source, doc, nodes = split_source(path, data, config)
        except (LoadError, OSError) as exc:
            summary.skipped[name] = str(exc)
            log.warning("skipped %s: %s", path, exc)
            continue
        seen_hashes[digest] = name
        files[name] = {"sha256": source.sha256, "title": doc.title, "encoding": source.encoding, "path": str(path)}
        nodes_by_file[name] = nodes
        summary.changed.append(name)

    if not files:  # bm25s cannot index nothing, and an empty index answers nothing: say why instead
        raise NothingToIndexError(paths, summary.skipped)
    summary.removed = sorted(set(old_files) - set(files))
    summary.files = len(files)
    unchanged = previous is not None and not summary.changed and not summary.removed
    unchanged = unchanged and stale_reason(previous.manifest, config) is None  # e.g. built without latent terms
    if unchanged and previous.manifest.skipped == summary.skipped:
        summary.unchanged, summary.chunks, summary.reused = True, len(previous.nodes), len(previous.nodes)
        summary.index_path = str(previous.path)
        summary.seconds = time.perf_counter() - started
        return summary

    all_nodes: list[TextNode] = []
    if previous:
        reused = set(files) - set(nodes_by_file)  # unchanged files keep their chunks as they are
        for node in previous.nodes:
            if node.metadata["doc"] in reused:
                nodes_by_file.setdefault(node.metadata["doc"], []).append(node)
    for name in files:
        all_nodes += nodes_by_file.get(name, [])
        files[name]["chunks"] = len(nodes_by_file.get(name, []))

    embedder = load_embedder(config.embedder, tuned_queries=False)  # passages only
    sentences = sentence_texts(all_nodes)
    # a store that keeps every vector it was given (the database) is asked by hash; files reuse the previous version
    cache = store.cached_vectors(config.embedder, [content_hash(search_text(n)) for n in all_nodes])
    sentence_vectors_cache = store.cached_vectors(config.embedder, [content_hash(t) for t in sentences])
    if vector_source and not store.shares_vectors:
        old_vectors = vector_source.vectors()
        cache.update({n.metadata["content_hash"]: old_vectors[i] for i, n in enumerate(vector_source.nodes)})
        sentence_vectors_cache.update(sentence_cache(vector_source.nodes, vector_source.sentence_vectors()))
    head = getattr(embedder, "latent_head", "")  # the latent-terms head, when the embedder has one
    latent_vectors = store.cached_latent(head, [content_hash(latent_text(n)) for n in all_nodes]) if head else {}
    if head and vector_source and not store.shares_vectors and vector_source.manifest.latent == head:
        latent_vectors.update(latent_cache(list(vector_source.nodes), vector_source.latent_vectors()))
    chunk_work = count_missing([search_text(n) for n in all_nodes], cache)
    sentence_work = count_missing(sentences, sentence_vectors_cache)
    latent_work = count_missing([latent_text(n) for n in all_nodes], latent_vectors) if head else 0
    total_work = chunk_work + sentence_work + latent_work

    def report(offset: int) -> Callable[[int, int], None] | None:  # one progress bar over both passes
        return (lambda done, _total: on_progress(offset + done, total_work)) if on_progress else None

    vectors, computed = embed_nodes(all_nodes, embedder, embedder.dim, cache, progress, report(0))
    sentence_vectors, sentences_computed = embed_texts(
        sentences, embedder, embedder.dim, sentence_vectors_cache, progress, report(chunk_work), unit="sentence"
    )
    latent, latent_computed = None, 0
    if head:
        latent, latent_computed = latent_nodes(
            all_nodes, embedder, latent_vectors, progress, report(chunk_work + sentence_work)
        )
    for pending in (cache, sentence_vectors_cache, latent_vectors):
        getattr(pending, "flush", lambda: None)()
    terms = corpus_terms(all_nodes, default_tokenizer())
    manifest = Manifest(
        embedder=config.embedder,
        dim=embedder.dim,
        chunker=config.chunker(),
        tokenizer=default_tokenizer().name,
        files={k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in files.items()},
        skipped=summary.skipped,
        latent=head,
    )
    summary.index_path = store.write(manifest, all_nodes, vectors, terms, sentence_vectors, latent)
    summary.chunks, summary.embedded, summary.reused = len(all_nodes), computed, len(all_nodes) - computed
    summary.sentences, summary.sentences_embedded = len(sentences), sentences_computed
    summary.latent_embedded = latent_computed
    summary.seconds = time.perf_counter() - started
    return summary
