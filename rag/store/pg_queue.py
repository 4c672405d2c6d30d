"""The ingest job queue in the PostgreSQL store: batches of documents that workers on any machine embed.

A batch is a whole corpus, as `rag ingest PATH…` is: when its last job is done, one worker
publishes it as the new live version (the ordinary ingest, which then finds every vector in the
shared cache). A job is one document with its bytes, so workers need no shared disk.

Claiming is `FOR UPDATE SKIP LOCKED`: two workers never take the same job. A claimed job carries
a heartbeat; a job whose worker stopped beating (killed, machine lost) for `lease` seconds is
claimed again, and what the dead worker embedded is already in the shared vector cache, so the
rerun does not embed it again. Publishing is claimed the same way, and a newer batch being
published supersedes older unpublished ones, so versions never go live out of order.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import psycopg

from rag.store.postgres import PostgresStore

LEASE_SECONDS = 60.0  # a job or publish not heard from for this long is taken over


@dataclass(frozen=True)
class Job:
    id: int
    batch: str
    name: str
    content: bytes
    attempts: int


@dataclass(frozen=True)
class BatchStatus:
    id: str
    state: str
    total: int
    done: int
    failed: int
    running: int
    embedded: int
    started: float | None  # epoch seconds of the first claim
    elapsed: float  # seconds since the first claim (to the last finish once every job ended)
    version: str | None
    error: str | None

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed

    def rate(self) -> float | None:
        """Documents per minute since the first claim."""
        finished = self.done + self.failed
        return finished / self.elapsed * 60 if finished and self.elapsed > 0 else None

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        return self.remaining / rate * 60 if rate and self.remaining else (0.0 if not self.remaining else None)

    def line(self) -> str:
        rate, eta = self.rate(), self.eta_seconds()
        parts = [f"batch {self.id}: {self.state}", f"{self.done + self.failed}/{self.total} documents"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.running:
            parts.append(f"{self.running} being embedded")
        parts.append(f"{self.embedded} chunks and sentences embedded")
        if rate is not None:
            parts.append(f"{rate:.1f} documents/min")
        if eta and self.state == "queued":
            parts.append(f"about {eta / 60:.1f} min left")
        if self.version:
            parts.append(f"version {self.version}")
        if self.error:
            parts.append(f"error: {self.error}")
        return ", ".join(parts)


class JobQueue:
    """The queue's SQL; every call is one short transaction on the store's pool."""

    def __init__(self, store: PostgresStore, lease: float = LEASE_SECONDS) -> None:
        self.store, self.lease = store, lease

    def enqueue(self, documents: list[tuple[str, bytes]]) -> str:
        """A new batch of (file name, bytes); returns its id."""
        batch = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]

        def insert(conn: psycopg.Connection) -> None:
            self.store.check_schema(conn)
            with conn.transaction():
                conn.execute("INSERT INTO ingest_batches (id, total) VALUES (%s, %s)", (batch, len(documents)))
                with conn.cursor().copy("COPY ingest_jobs (batch, name, content) FROM STDIN") as copy:
                    for name, data in documents:
                        copy.write_row((batch, name, data))

        self.store.run(insert, retry=False)
        return batch

    def claim(self, worker: str) -> Job | None:
        """The oldest job nobody holds (or whose holder stopped beating), now held by `worker`."""
        query = """
            UPDATE ingest_jobs SET state = 'running', worker = %(w)s, attempts = attempts + 1,
                claimed_at = now(), heartbeat = now()
            WHERE id = (
                SELECT id FROM ingest_jobs
                WHERE state = 'queued' OR (state = 'running' AND heartbeat < now() - make_interval(secs => %(lease)s))
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1
            )
            RETURNING id, batch, name, content, attempts
        """
        row = self.store.run(lambda conn: conn.execute(query, {"w": worker, "lease": self.lease}).fetchone())
        return Job(row[0], row[1], row[2], bytes(row[3]), row[4]) if row else None

    def beat(self, job: int, worker: str) -> bool:
        """Keep holding a job; False when another worker took it over (this one was presumed dead)."""
        query = "UPDATE ingest_jobs SET heartbeat = now() WHERE id = %s AND worker = %s AND state = 'running'"
        return self.store.run(lambda conn: conn.execute(query, (job, worker)).rowcount) == 1

    def finish(
        self, job: int, worker: str, chunks: int = 0, embedded: int = 0, seconds: float = 0.0, error: str | None = None
    ) -> bool:
        """Record a job's end (an error: the document cannot be read; it is not retried)."""
        query = """
            UPDATE ingest_jobs SET state = %s, finished_at = now(), chunks = %s, embedded = %s, seconds = %s, error = %s
            WHERE id = %s AND worker = %s AND state = 'running'
        """
        state = "failed" if error else "done"
        params = (state, chunks, embedded, seconds, error, job, worker)
        return self.store.run(lambda conn: conn.execute(query, params).rowcount) == 1

    def claim_publish(self) -> str | None:
        """The newest batch whose jobs all ended and that nobody is publishing; older unpublished ones are
        superseded (their remaining jobs cancelled), so versions go live in the order they were enqueued."""

        def pick(conn: psycopg.Connection) -> str | None:
            with conn.transaction():
                row = conn.execute(
                    """
                    SELECT b.id FROM ingest_batches b
                    WHERE (b.state = 'queued'
                           OR (b.state = 'publishing' AND b.heartbeat < now() - make_interval(secs => %s)))
                      AND NOT EXISTS (SELECT 1 FROM ingest_jobs j
                                      WHERE j.batch = b.id AND j.state IN ('queued', 'running'))
                    ORDER BY b.created_at DESC, b.id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
                    """,
                    (self.lease,),
                ).fetchone()
                if row is None:
                    return None
                (batch,) = row
                conn.execute(
                    "UPDATE ingest_batches SET state = 'publishing', heartbeat = now() WHERE id = %s", (batch,)
                )
                older = "SELECT id FROM ingest_batches WHERE state IN ('queued', 'publishing') AND created_at < "
                older += "(SELECT created_at FROM ingest_batches WHERE id = %s) AND id <> %s"
                conn.execute(
                    f"UPDATE ingest_jobs SET state = 'cancelled' WHERE state = 'queued' AND batch IN ({older})",
                    (batch, batch),
                )
                conn.execute(
                    f"UPDATE ingest_batches SET state = 'superseded', finished_at = now() WHERE id IN ({older})",
                    (batch, batch),
                )
                return batch

        return self.store.run(pick)

    def beat_publish(self, batch: str) -> None:
        query = "UPDATE ingest_batches SET heartbeat = now() WHERE id = %s AND state = 'publishing'"
        self.store.run(lambda conn: conn.execute(query, (batch,)))

    def documents(self, batch: str) -> list[tuple[str, bytes]]:
        """Every document of a batch, including those a worker could not read (the ingest names why)."""
        query = "SELECT name, content FROM ingest_jobs WHERE batch = %s ORDER BY id"
        return [(name, bytes(data)) for name, data in self.store.run(lambda conn: conn.execute(query, (batch,)))]

    def published(self, batch: str, version: str | None, error: str | None = None) -> None:
        query = "UPDATE ingest_batches SET state = %s, version = %s, error = %s, finished_at = now() WHERE id = %s"
        state = "failed" if error else "live"
        self.store.run(lambda conn: conn.execute(query, (state, version, error, batch)))

    def status(self, limit: int = 5) -> list[BatchStatus]:
        """The newest batches, newest first, with their progress."""
        query = """
            SELECT b.id, b.state, b.total,
                count(*) FILTER (WHERE j.state = 'done'), count(*) FILTER (WHERE j.state = 'failed'),
                count(*) FILTER (WHERE j.state = 'running'), coalesce(sum(j.embedded), 0),
                extract(epoch FROM min(j.claimed_at)),
                extract(epoch FROM coalesce(
                    CASE WHEN count(*) FILTER (WHERE j.state IN ('queued', 'running')) = 0 THEN max(j.finished_at) END,
                    now()) - min(j.claimed_at)),
                b.version, b.error
            FROM ingest_batches b LEFT JOIN ingest_jobs j ON j.batch = b.id
            GROUP BY b.id ORDER BY b.created_at DESC, b.id DESC LIMIT %s
        """

        def fetch(conn: psycopg.Connection) -> list[BatchStatus]:
            self.store.check_schema(conn)
            return [
                BatchStatus(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    int(r[6]),
                    None if r[7] is None else float(r[7]),
                    float(r[8] or 0.0),
                    r[9],
                    r[10],
                )  # fmt: skip
                for r in conn.execute(query, (limit,))
            ]

        return self.store.run(fetch)
