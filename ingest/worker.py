"""Ingest spread over machines: `rag ingest --enqueue` puts documents on the database's queue,
`rag worker` processes on any number of machines embed them, and the worker that finds a batch
drained publishes it.

Embedding is the cost (about 45 KiB of text a minute per 2-core worker) and it parallelizes by
document. A worker embeds one document's chunks, sentences and latent terms into the store's shared
cache, which writes as it goes; publishing is then the ordinary ingest over the batch's
documents, which finds every vector cached and embeds nothing. See `rag.store.pg_queue` for the
claiming, leases and ordering.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.embed import embed_nodes, embed_texts, latent_nodes, latent_text, sentence_texts
from ingest.load import LoadError, discover, read_source
from ingest.pipeline import IngestConfig, NothingToIndexError, ingest, split_source
from ingest.split import content_hash, search_text
from rag.config import set_threads
from rag.embedders import load_embedder
from rag.store import IndexLoadError, open_store
from rag.store.pg_queue import LEASE_SECONDS, JobQueue
from rag.store.postgres import PostgresStore

log = logging.getLogger(__name__)


def queue_of(location: str | Path | None, lease: float = LEASE_SECONDS) -> JobQueue:
    store = open_store(location)
    if not isinstance(store, PostgresStore):
        raise IndexLoadError(
            "the job queue lives in the PostgreSQL store: pass --store postgresql://… (or set SEISAKU_QA_STORE)"
        )
    return JobQueue(store, lease)


@dataclass
class Enqueued:
    batch: str
    names: list[str]
    skipped: dict[str, str]


def enqueue(paths: list[Path], location: str | Path | None) -> Enqueued:
    """Put the documents under `paths` on the queue as one batch (the whole corpus of the next version)."""
    queue = queue_of(location)
    documents: list[tuple[str, bytes]] = []
    skipped: dict[str, str] = {}
    for path in discover(paths):
        try:
            if any(name == path.name for name, _ in documents):
                raise LoadError("same file name as another file in this batch")
            documents.append((path.name, read_source(path)))
        except (LoadError, OSError) as exc:
            skipped[path.name] = str(exc)
    if not documents:
        raise NothingToIndexError(paths, skipped)
    return Enqueued(queue.enqueue(documents), [name for name, _ in documents], skipped)


def embed_document(store: PostgresStore, config: IngestConfig, embedder, name: str, data: bytes) -> tuple[int, int]:
    """Embed one document's chunks and sentences into the store's shared cache; (chunks, vectors computed)."""
    _, _, nodes = split_source(Path(name), data, config)  # loaders read the bytes; the name gives the format
    sentences = sentence_texts(nodes)
    chunks = store.cached_vectors(config.embedder, [content_hash(search_text(n)) for n in nodes])
    sentence_vectors = store.cached_vectors(config.embedder, [content_hash(t) for t in sentences])
    _, computed = embed_nodes(nodes, embedder, embedder.dim, chunks, False, None)
    _, sentences_computed = embed_texts(sentences, embedder, embedder.dim, sentence_vectors, False, None)
    latent, latent_computed = {}, 0
    if head := getattr(embedder, "latent_head", ""):  # so the publish finds these cached too
        latent = store.cached_latent(head, [content_hash(latent_text(n)) for n in nodes])
        _, latent_computed = latent_nodes(nodes, embedder, latent, False, None)
    for pending in (chunks, sentence_vectors, latent):
        getattr(pending, "flush", lambda: None)()
    return len(nodes), computed + sentences_computed + latent_computed


class _Heartbeat:
    """Calls `beat` every `interval` seconds on a thread while the block runs."""

    def __init__(self, beat: Callable[[], object], interval: float) -> None:
        self.beat, self.interval, self._stop = beat, interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # a missed beat only risks a takeover after the lease, never a wrong result
                log.warning("heartbeat failed: %s", exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def publish(queue: JobQueue, config: IngestConfig, batch: str) -> str:
    """Make a drained batch the live version (every vector is cached: nothing is embedded here)."""
    with tempfile.TemporaryDirectory(prefix="seisaku-publish-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        for name, data in queue.documents(batch):
            (folder / name).write_bytes(data)
        try:
            summary = ingest([folder], queue.store, config, progress=False)
        except NothingToIndexError as exc:
            queue.published(
                batch, None, error=f"nothing to index: {'; '.join(f'{k}: {v}' for k, v in exc.skipped.items())}"
            )
            raise
    version = queue.store.current()
    queue.published(batch, version)
    return (
        f"batch {batch} live as version {version}: {summary.files} files, {summary.chunks} chunks, "
        f"{summary.embedded + summary.latent_embedded} chunks embedded at publish"
    )  # vectors or latent terms


def run_worker(
    location: str | Path | None,
    config: IngestConfig | None = None,
    worker: str | None = None,
    lease: float = LEASE_SECONDS,
    idle_exit: bool = False,
    poll: float = 2.0,
    say: Callable[[str], None] = print,
) -> int:
    """Claim, embed and finish jobs until the queue is empty (`idle_exit`) or forever; returns jobs done."""
    config = config or IngestConfig()
    queue = queue_of(location, lease)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    set_threads("ingest")
    embedder = None
    done = 0
    while True:
        job = queue.claim(worker)
        if job is not None:
            embedder = embedder or load_embedder(config.embedder, tuned_queries=False)
            started = time.perf_counter()
            with _Heartbeat(functools.partial(queue.beat, job.id, worker), lease / 3):
                try:
                    chunks, embedded = embed_document(queue.store, config, embedder, job.name, job.content)
                except (LoadError, OSError) as exc:
                    queue.finish(job.id, worker, error=str(exc))
                    say(f"{job.name}: skipped ({exc})")
                    continue
            seconds = time.perf_counter() - started
            if queue.finish(job.id, worker, chunks, embedded, seconds):
                done += 1
                retry = f", attempt {job.attempts}" if job.attempts > 1 else ""
                say(f"{job.name}: {chunks} chunks, {embedded} vectors embedded in {seconds:.1f} s{retry}")
            continue
        batch = queue.claim_publish()
        if batch is not None:
            with _Heartbeat(functools.partial(queue.beat_publish, batch), lease / 3):
                try:
                    say(publish(queue, config, batch))
                except NothingToIndexError as exc:
                    say(f"batch {batch}: not published, {exc}")
            continue
        if idle_exit:
            return done
        time.sleep(poll)
