"""The PostgreSQL + pgvector store: the index in a database that several app servers and workers share.

A version's chunks, sentences and BM25 postings are loaded into their own
partitions (`rag.store.pg_schema`) with IVFFlat indexes, attached, and made live by
one UPDATE, so a reader bound to a version never sees a mix. The rankings of a
query come back in one round trip: IVFFlat over chunk vectors, IVFFlat over
sentence vectors grouped to their chunk's best, BM25 summed from the
per-(term, chunk) scores bm25s would compute (so it ranks exactly as the
embedded store does), and latent terms summed the same way from each feature's
packed postings. Vectors are cached by (embedder, content hash) in a table
every ingest shares, so nothing is embedded twice.

Credentials come only from the URL (or libpq's PG* variables and ~/.pgpass);
messages name the server by `location`, which leaves the password out.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any, TypeVar

import numpy as np
import psycopg
import scipy.sparse
from llama_index.core.schema import TextNode
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from rag.store.base import (
    EMPTY_TERM,
    FORMAT_VERSION,
    IndexLoadError,
    IndexSnapshot,
    Manifest,
    Moments,
    Ranking,
    Rankings,
    Store,
    StoreUnavailable,
    latent_scores,
    node_sentences,
    sentence_moments,
    top_matching,
)
from rag.store.pg_schema import DIM, MIGRATION_LOCK, MIGRATIONS, PARTITIONED, SCHEMA_VERSION

log = logging.getLogger(__name__)
T = TypeVar("T")

INGEST_LOCK = 0x5E15A18  # pg_advisory_lock key held by an ingest (one at a time per database)
KEEP_OLD_VERSIONS = 1  # readers bound to the previous version may still be querying it
RETRIES = 3  # attempts on a lost connection before StoreUnavailable
# IVFFlat lists probed per query: each list holds about 1,000 rows (`ivf_lists`), so 10 probes rank ~10,000
# candidates exactly. At 1000x the corpus (1M sentences) 10 probes read recall@10 0.99-1.00 against exact search
MAX_SENTENCE_ROWS = 1000  # sentences a query ranks before grouping them by chunk
PROBES = int(os.environ.get("SEISAKU_QA_PG_PROBES", "10"))
BUILD_MEMORY = os.environ.get("SEISAKU_QA_PG_BUILD_MEMORY", "1GB")  # per ingest session, for the IVFFlat k-means


def redact(url: str) -> str:
    """The URL without its password (and without query parameters, which may hold one)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host = info.get("host", "") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '')}"


def ivf_lists(rows: int) -> int:
    """pgvector's guidance for an IVFFlat index over `rows` vectors: rows / 1000 up to 1M rows, sqrt(rows) beyond."""
    return max(1, rows // 1000) if rows <= 1_000_000 else int(rows**0.5)


def _new_version_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _partition_name(table: str, version: str) -> str:
    """The partition of `table` holding `version` (the migrations derive the same name in SQL)."""
    return f"{table}_{re.sub(r'[^0-9a-z]', '_', version.lower())}"


def _partition(table: str, version: str) -> sql.Identifier:
    return sql.Identifier(_partition_name(table, version))


class PostgresStore(Store):
    """A connection pool to one database holding the seisaku-qa schema."""

    shares_vectors = True
    _shared: dict[tuple[int, str], PostgresStore] = {}
    _shared_lock = threading.Lock()

    def __init__(self, url: str, max_size: int | None = None, timeout: float | None = None) -> None:
        self.url = url
        self.timeout = timeout or float(os.environ.get("SEISAKU_QA_PG_TIMEOUT", "10"))
        self._location = redact(url)
        size = max_size or int(os.environ.get("SEISAKU_QA_PG_POOL", "4"))
        self.pool = self._new_pool(size)
        self._opened = False
        self._open_lock = threading.Lock()

    def _new_pool(self, size: int) -> ConnectionPool:
        return ConnectionPool(
            self.url, min_size=1, max_size=size, kwargs={"autocommit": True}, configure=self._configure, open=False
        )

    @classmethod
    def shared(cls, url: str) -> PostgresStore:
        """One store (one pool) per URL and process: every PolicyQA and ingest in a process shares it."""
        key = (os.getpid(), url)
        with cls._shared_lock:
            store = cls._shared.get(key)
            if store is None:
                store = cls._shared[key] = cls(url)
            return store

    @property
    def location(self) -> str:
        return self._location

    @staticmethod
    def _configure(conn: psycopg.Connection) -> None:
        try:
            from pgvector.psycopg import register_vector

            register_vector(conn)
        except psycopg.ProgrammingError:  # no vector extension yet: only `rag db init` can run
            pass
        if _has_vector(conn):
            conn.execute(f"SET ivfflat.probes = {PROBES}")

    # connections, retried

    def run(self, work: Callable[[psycopg.Connection], T], retry: bool = True) -> T:
        """`work(conn)` on a pooled connection; a lost connection is retried (if `retry`), then reported clearly."""
        with self._open_lock:
            if not self._opened:
                self.pool.open(wait=False)
                self._opened = True
        last: Exception | None = None
        for attempt in range(RETRIES):
            try:
                with self.pool.connection(timeout=self.timeout) as conn:
                    return work(conn)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
                    raise
                last = exc
                if not retry:
                    break
                log.warning("PostgreSQL at %s: %s (try %d/%d)", self.location, _reason(exc), attempt + 1, RETRIES)
                self.pool.check()  # drop connections that died with the server
                time.sleep(0.2 * 2**attempt)
        reason = self._probe() if isinstance(last, PoolTimeout) else _reason(last)
        raise StoreUnavailable(
            f"PostgreSQL at {self.location} is unreachable ({reason}): "
            "check that the server is up and the URL in --store / $SEISAKU_QA_STORE"
        ) from last

    def _probe(self) -> str:
        """Why a connection cannot be made (the pool only says it timed out)."""
        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(self.timeout))).close()
        except psycopg.Error as exc:
            return _reason(exc)
        return f"no free connection within {self.timeout:g} s"

    def close(self) -> None:
        self.pool.close()
        with self._shared_lock:
            for key, store in list(self._shared.items()):
                if store is self:
                    del self._shared[key]

    # schema

    def init_schema(self) -> tuple[int, int]:
        """Create or migrate the schema; returns (version before, version after)."""

        def migrate(conn: psycopg.Connection) -> tuple[int, int]:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                before = _schema_version(conn)
                if before > SCHEMA_VERSION:
                    raise IndexLoadError(
                        f"database at {self.location} has schema {before}, newer than this seisaku-qa "
                        f"({SCHEMA_VERSION}): upgrade seisaku-qa"
                    )
                for version in range(before + 1, SCHEMA_VERSION + 1):
                    conn.execute(MIGRATIONS[version])
                    conn.execute("INSERT INTO seisaku_schema (version) VALUES (%s)", (version,))
            return before, SCHEMA_VERSION

        result = self.run(migrate)
        self.pool.close()  # connections configured before the extension existed lack the vector type
        self.pool = self._new_pool(self.pool.max_size)
        self._opened = False
        return result

    def check_schema(self, conn: psycopg.Connection) -> None:
        version = _schema_version(conn)
        if version == 0:
            raise IndexLoadError(f"no seisaku-qa schema in {self.location}: run `rag db init --store URL`")
        if version > SCHEMA_VERSION:
            raise IndexLoadError(
                f"database at {self.location} has schema {version}, newer than this seisaku-qa: upgrade seisaku-qa"
            )
        if version < SCHEMA_VERSION:
            raise IndexLoadError(f"database at {self.location} has old schema {version}: run `rag db init`")

    # versions

    def current(self) -> str | None:
        def live(conn: psycopg.Connection) -> str | None:
            if _schema_version(conn) == 0:
                return None
            row = conn.execute("SELECT version FROM live").fetchone()
            return row[0] if row else None

        return self.run(live)

    def read(self) -> PgSnapshot:
        def load(conn: psycopg.Connection) -> PgSnapshot:
            self.check_schema(conn)
            with conn.transaction():  # the pointer and the rows it names read together
                row = conn.execute(
                    "SELECT v.id, v.manifest, v.n_chunks, v.sentence_moments"
                    " FROM live JOIN versions v ON v.id = live.version"
                ).fetchone()
                if row is None:
                    raise IndexLoadError(f"no index in {self.location}: run `rag ingest --store URL`")
                version, manifest_data, n_chunks, moments = row
                counted = conn.execute(
                    "SELECT (SELECT count(*) FROM chunks WHERE version = %(v)s),"
                    " (SELECT count(*) FROM sentences WHERE version = %(v)s)",
                    {"v": version},
                )
                stored_chunks, n_sentences = counted.fetchone()
            manifest = _manifest(manifest_data, self.location)
            if not (stored_chunks == n_chunks == manifest.counts.get("chunks", -1)) or (
                n_sentences != manifest.counts.get("sentences", -1)
            ):
                raise IndexLoadError(
                    f"index version {version} in {self.location} is inconsistent ({stored_chunks} chunks, "
                    f"{n_sentences} sentence vectors for a manifest of {manifest.counts}): run `rag ingest --rebuild`"
                )
            snapshot = PgSnapshot(self, version, manifest, n_chunks, n_sentences)
            if moments is not None:
                flat = np.frombuffer(moments, dtype="<f8")
                snapshot.__dict__["_moments"] = (flat[:DIM], flat[DIM:].reshape(DIM, DIM))
            return snapshot

        return self.run(load)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """A session advisory lock on its own connection: one ingest at a time per database."""
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"PostgreSQL at {self.location} is unreachable ({_reason(exc)})") from exc
        try:
            self.check_schema(conn)
            conn.execute("SELECT pg_advisory_lock(%s)", (INGEST_LOCK,))
            yield
        finally:
            conn.close()  # ends the session, which releases the lock even if unlocking would fail

    # ingest

    def cached_vectors(self, embedder: str, keys: list[str]) -> dict[str, np.ndarray]:
        wanted = sorted(set(keys))

        def fetch(conn: psycopg.Connection) -> dict[str, np.ndarray]:
            rows = conn.execute(
                "SELECT content_hash, embedding FROM embeddings WHERE embedder = %s AND content_hash = ANY(%s)",
                (embedder, wanted),
            )
            return {key: _array(vector) for key, vector in rows}

        cache = VectorCache(lambda pending: self.save_vectors(embedder, pending))
        dict.update(cache, self.run(fetch))
        return cache

    def cached_latent(self, head: str, keys: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        wanted = sorted(set(keys))

        def fetch(conn: psycopg.Connection) -> dict[str, tuple[np.ndarray, np.ndarray]]:
            rows = conn.execute(
                "SELECT content_hash, features, weights FROM latent_vectors WHERE head = %s AND content_hash = ANY(%s)",
                (head, wanted),
            )
            return {key: (np.frombuffer(f, ">i4").astype(np.int32), np.frombuffer(w, ">f4").astype(np.float32))
                    for key, f, w in rows}  # fmt: skip

        def save(pending: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
            def insert(conn: psycopg.Connection) -> None:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO latent_vectors (head, content_hash, features, weights) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT DO NOTHING",
                        [(head, key, np.asarray(f, ">i4").tobytes(), np.asarray(w, ">f4").tobytes())
                         for key, (f, w) in pending.items()],
                    )  # fmt: skip

            self.run(insert)

        cache = VectorCache(save)
        dict.update(cache, self.run(fetch))
        return cache

    def save_vectors(self, embedder: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return

        def save(conn: psycopg.Connection) -> None:
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE new_embeddings (content_hash text, embedding vector) ON COMMIT DROP")
                with conn.cursor().copy("COPY new_embeddings FROM STDIN") as copy:
                    for key, vector in vectors.items():
                        copy.write_row((key, _vector_text(vector)))
                conn.execute(
                    "INSERT INTO embeddings (embedder, content_hash, embedding) "
                    "SELECT %s, content_hash, embedding FROM new_embeddings ON CONFLICT DO NOTHING",
                    (embedder,),
                )

        self.run(save)

    def write(
        self,
        manifest: Manifest,
        nodes: list[TextNode],
        vectors: np.ndarray,
        terms: list[list[str]],
        sentence_vectors: np.ndarray,
        latent: Any = None,
    ) -> str:
        if manifest.dim != DIM:
            raise IndexLoadError(f"the PostgreSQL store holds {DIM}-dimensional vectors, not {manifest.dim}")
        version = _new_version_id()
        nodes = list(nodes)  # may be another version's chunks, fetched on demand: read them once
        spans = node_sentences(nodes)
        manifest.created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest.counts = {"files": len(manifest.files), "chunks": len(nodes), "sentences": len(spans)}
        if manifest.latent:
            if latent is None or latent.shape[0] != len(nodes):
                raise ValueError(f"manifest names latent head {manifest.latent!r} but no vector for every chunk")
            manifest.counts["latent_dim"] = int(latent.shape[1])
        by_feature = latent.tocsc() if manifest.latent else None
        postings = _postings(terms)
        total_len = sum(max(len(t), 1) for t in terms)
        moments = Moments(DIM)  # taken while the sentence vectors stream into COPY

        def load(conn: psycopg.Connection) -> None:
            # HNSW builds an order of magnitude faster while the graph fits in maintenance_work_mem
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(BUILD_MEMORY)))
            with conn.transaction():
                conn.execute(
                    "INSERT INTO versions (id, manifest, n_chunks, total_len) VALUES (%s, %s, %s, %s)",
                    (version, Jsonb(_manifest_dict(manifest)), len(nodes), total_len),
                )
                with conn.cursor().copy("COPY documents (version, name, title, sha256, info) FROM STDIN") as copy:
                    for name, info in manifest.files.items():
                        copy.write_row((version, name, info.get("title", ""), info.get("sha256", ""), Jsonb(info)))
                with conn.cursor().copy("COPY terms (version, term, df) FROM STDIN") as copy:
                    for term, rows in postings.items():
                        copy.write_row((version, term, len(rows)))
            for table in PARTITIONED:  # loaded as plain tables, indexed, then attached: no reader sees them
                conn.execute(
                    sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                        _partition(table, version), sql.Identifier(table)
                    )
                )
            with conn.cursor().copy(
                sql.SQL("COPY {} (version, row, node_id, doc, content_hash, node, embedding) FROM STDIN").format(
                    _partition("chunks", version)
                )
            ) as copy:
                for row, (node, vector) in enumerate(zip(nodes, vectors)):
                    copy.write_row(
                        (version, row, node.node_id, node.metadata["doc"], node.metadata.get("content_hash", ""),
                         Jsonb(node.to_dict()), _vector_text(vector))
                    )  # fmt: skip
            with conn.cursor().copy(
                sql.SQL("COPY {} (version, row, node_row, doc, span_start, span_end, embedding) FROM STDIN").format(
                    _partition("sentences", version)
                )
            ) as copy:
                for row, ((node_row, start, end), vector) in enumerate(zip(spans, sentence_vectors)):
                    doc = nodes[node_row].metadata["doc"]
                    copy.write_row((version, row, node_row, doc, start, end, _vector_text(vector)))
                    moments.add(vector)
            mean, second = moments.result()
            conn.execute(
                "UPDATE versions SET sentence_moments = %s WHERE id = %s",
                (np.concatenate([mean, second.ravel()]).astype("<f8").tobytes(), version),
            )
            with conn.cursor().copy(
                sql.SQL("COPY {} (version, term, row, doc, tf, score) FROM STDIN").format(
                    _partition("postings", version)
                )
            ) as copy:
                for term, rows in postings.items():
                    for row, tf, score in rows:
                        copy.write_row((version, term, row, nodes[row].metadata["doc"], tf, score))
            with conn.cursor().copy(
                sql.SQL("COPY {} (version, term, rows, scores) FROM STDIN").format(_partition("term_postings", version))
            ) as copy:
                for term, rows in postings.items():
                    ordered = sorted(rows)
                    copy.write_row((version, term, np.array([r for r, _, _ in ordered], ">i4").tobytes(),
                                    np.array([s for _, _, s in ordered], ">f4").tobytes()))  # fmt: skip
            if by_feature is not None:
                with conn.cursor().copy(
                    sql.SQL("COPY {} (version, feature, rows, weights) FROM STDIN").format(
                        _partition("latent_postings", version)
                    )
                ) as copy:
                    for feature in np.flatnonzero(np.diff(by_feature.indptr)).tolist():
                        span = slice(by_feature.indptr[feature], by_feature.indptr[feature + 1])
                        order = np.argsort(by_feature.indices[span], kind="stable")
                        copy.write_row((version, feature, by_feature.indices[span][order].astype(">i4").tobytes(),
                                        by_feature.data[span][order].astype(">f4").tobytes()))  # fmt: skip
            for table in PARTITIONED:
                part = _partition(table, version)
                if table in ("chunks", "sentences"):
                    lists = ivf_lists(len(nodes) if table == "chunks" else len(spans))
                    ivf = sql.Identifier(_partition_name(table, version) + "_ivf")
                    index = "CREATE INDEX {} ON {} USING ivfflat (embedding vector_ip_ops) WITH (lists = {})"
                    conn.execute(sql.SQL(index).format(ivf, part, sql.Literal(lists)))
                    conn.execute(sql.SQL("CREATE INDEX ON {} (version, doc)").format(part))
                if table == "sentences":
                    conn.execute(sql.SQL("CREATE INDEX ON {} (version, node_row)").format(part))
                if table == "chunks":
                    conn.execute(sql.SQL("CREATE INDEX ON {} (version, node_id)").format(part))
                keys = {"postings": "version, term, row", "term_postings": "version, term",
                        "latent_postings": "version, feature"}.get(table, "version, row")  # fmt: skip
                conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(part, sql.SQL(keys)))
                conn.execute(sql.SQL("ANALYZE {}").format(part))
                conn.execute(
                    sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                        sql.Identifier(table), part, sql.Literal(version)
                    )
                )
            with conn.transaction():  # the switch: one transaction, so readers see the old version or the new
                conn.execute("UPDATE versions SET state = 'retired' WHERE state = 'live'")
                conn.execute("UPDATE versions SET state = 'live', live_at = now() WHERE id = %s", (version,))
                conn.execute("UPDATE live SET version = %s", (version,))
            conn.execute("RESET maintenance_work_mem")

        try:
            self.run(load, retry=False)  # not idempotent: a failed load is dropped and the ingest fails
        except BaseException:
            self._drop_quietly(version)
            raise
        self.prune()
        return f"{self.location} version {version}"

    def prune(self) -> None:
        """Drop all but the newest KEEP_OLD_VERSIONS retired versions, and versions an ingest abandoned.

        Called with the ingest lock held, so a version still `building` belongs to a killed ingest.
        """

        def old(conn: psycopg.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM versions WHERE state = 'building' OR (state = 'retired' AND id NOT IN "
                "(SELECT id FROM versions WHERE state = 'retired' ORDER BY live_at DESC NULLS LAST LIMIT %s))",
                (KEEP_OLD_VERSIONS,),
            )
            return [r[0] for r in rows]

        for version in self.run(old):
            self._drop_quietly(version)

    def _drop_quietly(self, version: str) -> None:
        def drop(conn: psycopg.Connection) -> None:
            conn.execute("SET lock_timeout = '5s'")
            for table in PARTITIONED:
                part = _partition(table, version)
                attached = conn.execute(
                    "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relname = %s",
                    (_partition_name(table, version),),
                ).fetchone()
                if attached:  # CONCURRENTLY: queries on the other partitions go on meanwhile
                    conn.execute(
                        sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(sql.Identifier(table), part)
                    )
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(part))
            conn.execute("DELETE FROM versions WHERE id = %s AND state <> 'live'", (version,))
            conn.execute("RESET lock_timeout")

        try:
            self.run(drop)
        except (psycopg.Error, StoreUnavailable) as exc:
            log.warning("could not drop old version %s yet (%s); the next ingest retries", version, _reason(exc))


class VectorCache(dict):
    """Vectors by content hash; new ones are written to the shared table in batches (`save`) as they are computed.

    So a killed ingest leaves what it embedded for the rerun (or another worker) to reuse.
    """

    BATCH = 256

    def __init__(self, save: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self.save = save
        self.pending: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.pending[key] = value
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        if pending:
            self.save(pending)


class SentenceRows:
    """Sentence vectors of a version, fetched by row when asked (the app process does not hold them all)."""

    def __init__(self, store: PostgresStore, version: str, count: int) -> None:
        self.store, self.version, self.count = store, version, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, rows: Any) -> np.ndarray:
        wanted = [int(r) for r in np.atleast_1d(np.asarray(rows))]

        def fetch(conn: psycopg.Connection) -> dict[int, np.ndarray]:
            found = conn.execute(
                "SELECT row, embedding FROM sentences WHERE version = %s AND row = ANY(%s)", (self.version, wanted)
            )
            return {row: _array(vector) for row, vector in found}

        by_row = self.store.run(fetch)
        return np.vstack([by_row[r] for r in wanted]) if wanted else np.zeros((0, DIM), dtype=np.float32)


class NodeRows(Sequence[TextNode]):
    """A version's chunks by row, fetched from the database when asked and kept in a bounded LRU cache.

    So an app process holds the chunks its recent queries touched, not the corpus.
    """

    CACHE = 4096  # chunks (about 2 KiB of text each)
    BATCH = 2000  # rows per fetch when iterating (ingest reads the previous version this way)

    def __init__(self, store: PostgresStore, version: str, count: int) -> None:
        self.store, self.version, self.count = store, version, count
        self._cache: OrderedDict[int, TextNode] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, row: Any) -> Any:
        if isinstance(row, slice):
            return self.take(range(*row.indices(self.count)))
        return self.take([row])[0]

    def __iter__(self) -> Iterator[TextNode]:
        for start in range(0, self.count, self.BATCH):
            yield from self._fetch(range(start, min(start + self.BATCH, self.count)), keep=False).values()

    def take(self, rows: Iterable[int]) -> list[TextNode]:
        """The chunks at these rows, in order: cached ones from memory, the rest in one query."""
        wanted = [int(r) for r in rows]
        for r in wanted:
            if not 0 <= r < self.count:
                raise IndexError(f"chunk row {r} is out of range (0..{self.count - 1})")
        with self._lock:
            found = {r: self._cache[r] for r in wanted if r in self._cache}
            for r in found:
                self._cache.move_to_end(r)
        missing = sorted(set(wanted) - set(found))
        if missing:
            found.update(self._fetch(missing, keep=True))
        return [found[r] for r in wanted]

    def remember(self, row: int, stored: dict[str, Any]) -> TextNode:
        """The chunk at `row` from its stored JSON, cached (the one already cached, if it is)."""
        with self._lock:
            node = self._cache.get(row)
            if node is None:
                node = self._cache[row] = TextNode.from_dict(stored)
                while len(self._cache) > self.CACHE:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(row)
            return node

    def _fetch(self, rows: Iterable[int], keep: bool) -> dict[int, TextNode]:
        wanted = list(rows)
        query = "SELECT row, node FROM chunks WHERE version = %s AND row = ANY(%s) ORDER BY row"
        fetched = self.store.run(lambda conn: conn.execute(query, (self.version, wanted)).fetchall())
        if len(fetched) != len(set(wanted)):
            raise IndexLoadError(
                f"index version {self.version} in {self.store.location} lost chunks (dropped after a newer "
                "version went live?): reload the index (the app does this by itself)"
            )
        make = self.remember if keep else lambda _row, stored: TextNode.from_dict(stored)
        return {row: make(row, stored) for row, stored in fetched}


class PgSnapshot(IndexSnapshot):
    """One version in the database. Chunks, sentences and vectors are fetched by row as queries need them;
    the process holds only the version's term statistics, sentence moments and a bounded chunk cache."""

    def __init__(self, store: PostgresStore, version: str, manifest: Manifest, n_chunks: int, n_sentences: int) -> None:
        self.store, self._version, self.manifest = store, version, manifest
        self.nodes = NodeRows(store, version, n_chunks)
        self.path = PurePath(store.location, version)
        self._sentences = SentenceRows(store, version, n_sentences)
        per_chunk = n_sentences / max(n_chunks, 1)
        self._sentence_rows = int(min(MAX_SENTENCE_ROWS, max(200, 60 * per_chunk)))

    def nodes_at(self, rows: Iterable[int]) -> list[TextNode]:
        return self.nodes.take(rows)

    def node_by_id(self, node_id: str) -> TextNode | None:
        query = "SELECT row, node FROM chunks WHERE version = %s AND node_id = %s"
        found = self.store.run(lambda conn: conn.execute(query, (self.version, node_id)).fetchone())
        return None if found is None else self.nodes.remember(*found)

    def sentences_of(self, node_ids: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        ids = list(dict.fromkeys(node_ids))
        query = (
            "SELECT c.node_id, s.span_start, s.span_end, s.row FROM chunks c JOIN sentences s"
            " ON s.version = c.version AND s.node_row = c.row"
            " WHERE c.version = %s AND c.node_id = ANY(%s) ORDER BY s.row"
        )
        out: dict[str, list[tuple[int, int, int]]] = {node_id: [] for node_id in ids}
        if ids:
            for node_id, start, end, row in self.store.run(lambda conn: conn.execute(query, (self.version, ids))):
                out[node_id].append((start, end, row))
        return out

    @property
    def version(self) -> str:
        return self._version

    def sentence_vectors(self) -> SentenceRows:
        return self._sentences

    def vectors(self) -> np.ndarray:
        def fetch(conn: psycopg.Connection) -> np.ndarray:
            rows = conn.execute("SELECT embedding FROM chunks WHERE version = %s ORDER BY row", (self.version,))
            return np.array([_array(v) for (v,) in rows]).reshape(-1, DIM)

        return self.store.run(fetch)

    def _exists(self) -> bool:
        query = "SELECT 1 FROM versions WHERE id = %s"
        return self.store.run(lambda conn: conn.execute(query, (self.version,)).fetchone()) is not None

    def sentence_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Stored with the version; a version written before schema 2 has them computed once from its rows."""
        cached = self.__dict__.get("_moments")
        if cached is None:
            every = self._sentences[list(range(len(self._sentences)))]
            cached = self.__dict__["_moments"] = sentence_moments(every, DIM)
        return cached

    def scores_of(
        self, vector: np.ndarray, terms: list[str], rows: list[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        query = """
            SELECT c.row, -(c.embedding <#> %(q)s::vector),
                (SELECT max(-(s.embedding <#> %(q)s::vector)) FROM sentences s
                 WHERE s.version = %(v)s AND s.node_row = c.row),
                (SELECT coalesce(sum(p.score), 0) FROM unnest(%(terms)s::text[]) q(term)
                 JOIN postings p ON p.term = q.term AND p.version = %(v)s AND p.row = c.row)
            FROM chunks c WHERE c.version = %(v)s AND c.row = ANY(%(rows)s)
        """
        params = {"q": _vector_text(vector), "v": self.version, "rows": [int(r) for r in rows], "terms": list(terms)}
        found = {row: (c, -1.0 if s is None else s, b) for row, c, s, b in self.store.run(
            lambda conn: conn.execute(query, params).fetchall())}  # fmt: skip
        values = np.array([found.get(int(r), (-1.0, -1.0, 0.0)) for r in rows], dtype=np.float32).reshape(-1, 3)
        return values[:, 0], values[:, 1], values[:, 2]

    def document_frequencies(self) -> tuple[dict[str, int], int]:
        cached = self.__dict__.get("_frequencies")
        if cached is None:

            def fetch(conn: psycopg.Connection) -> dict[str, int]:
                return dict(conn.execute("SELECT term, df FROM terms WHERE version = %s", (self.version,)).fetchall())

            cached = self.__dict__["_frequencies"] = (self.store.run(fetch), len(self.nodes))
        return cached

    def rankings(
        self, vector: np.ndarray, terms: list[str] | None, docs: list[str] | None, n: int, latent: Any = None
    ) -> Rankings:
        """The rankings in one round trip: IVFFlat over chunks and sentences, BM25 over the query's terms, and
        the latent-term dot product over the query's features (summed here from packed postings, as BM25 is).

        Without a document filter BM25 is summed here from each term's packed postings (one row per term:
        at 1000x the corpus a query's terms hold ~500,000 postings, which SQL sums in ~200 ms and numpy in
        ~2 ms), in query-term order and in float32 as bm25s does, so scores and ties are the embedded store's.
        """
        latent = latent if self.manifest.latent else None  # an index without latent vectors ranks three ways
        params = {
            "q": _vector_text(vector),
            "v": self.version,
            "n": n,
            "m": self._sentence_rows,
            "docs": list(docs) if docs else None,
            "terms": list(terms or []),
            "features": [] if latent is None else latent.indices.tolist(),
        }
        # with a document filter the IVFFlat lists would be probed before filtering and miss rows:
        # `+ 0` keeps the planner off the index, so the (smaller) filtered set is ranked exactly
        distance = "(embedding <#> %(q)s::vector) + 0" if docs else "embedding <#> %(q)s::vector"
        where = "version = %(v)s" + (" AND doc = ANY(%(docs)s)" if docs else "")
        lexical = (
            """UNION ALL SELECT 2, p.row, sum(p.score), NULL, NULL, NULL FROM unnest(%(terms)s::text[]) AS q(term)
               JOIN postings p ON p.version = %(v)s AND p.term = q.term AND p.doc = ANY(%(docs)s)
               GROUP BY p.row HAVING sum(p.score) > 0"""
            if docs
            else """UNION ALL SELECT 3, 0, 0, t.term, t.rows, t.scores FROM term_postings t
               WHERE t.version = %(v)s AND t.term = ANY(%(terms)s::text[])"""
        )
        query = f"""
            WITH chunk AS (
                SELECT row, embedding <#> %(q)s::vector AS d FROM chunks WHERE {where} ORDER BY {distance} LIMIT %(n)s
            ), sentence AS (
                SELECT node_row, min(d) AS d FROM (
                    SELECT node_row, embedding <#> %(q)s::vector AS d FROM sentences WHERE {where}
                    ORDER BY {distance} LIMIT %(m)s
                ) s GROUP BY node_row
            )
            SELECT 0, row, -d, NULL::text, NULL::bytea, NULL::bytea FROM chunk
            UNION ALL SELECT 1, node_row, -d, NULL, NULL, NULL FROM sentence
            {lexical if terms else ""}
            {self._LATENT if latent is not None else ""}
            {self._ALLOWED if latent is not None and docs else ""}
        """
        rows = self.store.run(lambda conn: conn.execute(query, params).fetchall())
        if not rows and not self._exists():
            raise IndexLoadError(
                f"index version {self.version} in {self.store.location} was dropped after newer ones went live: "
                "reload the index (the app does this by itself)"
            )
        out: list[list[tuple[int, float]]] = [[], [], []]
        packed: dict[str, tuple[bytes, bytes]] = {}
        features: dict[int, tuple[bytes, bytes]] = {}
        allowed = np.zeros(len(self.nodes), dtype=bool) if docs else None
        for kind, row, score, term, term_rows, term_scores in rows:
            if kind == 3:
                packed[term] = (term_rows, term_scores)
            elif kind == 4:
                features[row] = (term_rows, term_scores)
            elif kind == 5:
                allowed[row] = True
            else:
                out[kind].append((row, float(score)))

        def ranking(pairs: list[tuple[int, float]]) -> Ranking:
            pairs = sorted(pairs, key=lambda p: (-np.float32(p[1]), p[0]))[:n]  # ties by row, as a stable sort
            return Ranking(
                np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.float32)
            )

        lexical_ranking = None if terms is None else ranking(out[2])
        if terms and not docs:
            lexical_ranking = self._bm25(terms, packed, n)
        latent_ranking = None
        if latent is not None:

            def postings(feature: int) -> tuple[np.ndarray, np.ndarray] | None:
                found = features.get(feature)
                return None if found is None else (np.frombuffer(found[0], ">i4"), np.frombuffer(found[1], ">f4"))

            latent_ranking = top_matching(latent_scores(len(self.nodes), latent, postings), n, allowed)
        return Rankings(ranking(out[0]), ranking(out[1]), lexical_ranking, latent_ranking)

    _LATENT = """UNION ALL SELECT 4, l.feature, 0, NULL, l.rows, l.weights FROM latent_postings l
               WHERE l.version = %(v)s AND l.feature = ANY(%(features)s::int[])"""
    _ALLOWED = "UNION ALL SELECT 5, row, 0, NULL, NULL, NULL FROM chunks WHERE version = %(v)s AND doc = ANY(%(docs)s)"

    def latent_vectors(self) -> Any:
        if not self.manifest.latent:
            return None
        query = "SELECT feature, rows, weights FROM latent_postings WHERE version = %s"
        found = self.store.run(lambda conn: conn.execute(query, (self.version,)).fetchall())
        rows = [np.frombuffer(r, ">i4") for _, r, _ in found]
        features = [np.full(len(r), f, dtype=np.int32) for (f, _, _), r in zip(found, rows)]
        weights = [np.frombuffer(w, ">f4") for _, _, w in found]
        shape = (len(self.nodes), int(self.manifest.counts.get("latent_dim", 0)))

        def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        coo = (joined(weights, np.float32), (joined(rows, np.int32), joined(features, np.int32)))
        matrix = scipy.sparse.csr_matrix(coo, shape=shape)
        matrix.sort_indices()
        return matrix

    def _bm25(self, terms: list[str], packed: dict[str, tuple[bytes, bytes]], n: int) -> Ranking:
        """Top n chunks by the sum of the terms' packed postings (a repeated term counts again); ties by row."""
        scores = np.zeros(len(self.nodes), dtype=np.float32)
        for term in terms:
            if term in packed:
                rows, values = packed[term]
                scores[np.frombuffer(rows, ">i4")] += np.frombuffer(values, ">f4")
        if not scores.any():
            return Ranking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        cut = np.partition(scores, -min(n, len(scores)))[-min(n, len(scores))]
        found = np.flatnonzero((scores >= cut) & (scores > 0))
        top = found[np.lexsort((found, -scores[found]))][:n]
        return Ranking(top.astype(np.int64), scores[top])


def _postings(terms: list[list[str]]) -> dict[str, list[tuple[int, int, float]]]:
    """term → [(chunk row, term frequency, BM25 score)], the scores exactly as bm25s computes them."""
    from rag.store.faiss import bm25_from_terms

    bm25 = bm25_from_terms(terms)
    data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]
    counts = [Counter(t) for t in terms]
    out = {}
    for term, col in bm25.vocab_dict.items():
        if col + 1 >= len(indptr) or term == EMPTY_TERM:  # a chunk without content words matches no query
            continue
        span = slice(indptr[col], indptr[col + 1])
        out[term] = [(int(r), counts[r].get(term, 1), float(s)) for r, s in zip(indices[span], data[span])]
    return out


def _array(vector: Any) -> np.ndarray:
    """A vector column value as float32 (pgvector's Python type, or its text form)."""
    if hasattr(vector, "to_numpy"):
        vector = vector.to_numpy()
    elif isinstance(vector, str):
        vector = [float(x) for x in vector.strip("[]").split(",")]
    return np.asarray(vector, dtype=np.float32)


def _vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in _array(vector)) + "]"


def _manifest_dict(manifest: Manifest) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(manifest)


def _manifest(data: dict[str, Any], location: str) -> Manifest:
    version = int(data.get("format_version", 0))
    if version != FORMAT_VERSION:
        raise IndexLoadError(f"index in {location} has format {version} (this seisaku-qa reads {FORMAT_VERSION}): "
                             "run `rag ingest --rebuild`")  # fmt: skip
    try:
        return Manifest(**data)
    except TypeError as exc:
        raise IndexLoadError(f"index manifest in {location} is invalid ({exc}): run `rag ingest --rebuild`") from exc


def _schema_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('seisaku_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM seisaku_schema").fetchone()[0]


def _has_vector(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone())


def _reason(exc: BaseException | None) -> str:
    """The first line of a driver error: what went wrong, without connection strings."""
    text = str(exc or "unknown error").strip().splitlines()
    return re.sub(r"password=\S+", "password=…", text[0] if text else type(exc).__name__)
