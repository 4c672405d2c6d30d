"""Speed and memory benchmark; prints figures, asserts nothing.

Measures on the bundled corpus: PDF text extraction and cleaning in pages per second (the bundled
texts as PDFs, `eval.textpdf`; the embedder's cost apart), cold ingest, no-change re-ingest, index
size, warm retrieve/ask latency over the eval questions, peak memory, and a fresh process's time to its first answer.
Then the large-corpus case: ingest time at 1x/2x/3x varied copies (to show it grows linearly),
and query latency at N x the corpus. Embedding N x 77k characters would take N x ~45 s here, so
the N x index reuses the real vectors with small noise per copy (the same FAISS and BM25 work
per query as real copies); the text of each copy differs so BM25 sees distinct documents.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse
from threadpoolctl import threadpool_limits

from eval.data import load_questions
from eval.metrics import percentile
from eval.textpdf import FONT, FONT_EMBEDDED, text_to_pdf
from ingest.clean import clean_document
from ingest.index import corpus_terms
from ingest.load import load_file
from ingest.pipeline import ingest
from rag.config import QUERY_THREADS, cores, corpus_dir, set_threads
from rag.qa import PolicyQA
from rag.store import Manifest, Store, node_sentences, open_store, read_index
from rag.text import default_tokenizer

QUESTIONS = Path("eval/questions.jsonl")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


PDF_PAGES_PER_SECOND_TARGET = 50  # extraction must not be the bottleneck: embedding runs at a few pages/s


def pdf_pages_per_second(work: Path, rounds: int = 3) -> tuple[int, float]:
    """(pages, pages per second) of load (pypdfium2) + clean over the bundled texts as PDFs; best of `rounds`.

    The best round is the figure: on a shared machine the others measure the neighbours.
    """
    work.mkdir(parents=True, exist_ok=True)
    pdfs = []
    pages = 0
    for src in sorted(corpus_dir().glob("*.txt")):
        pdfs.append(work / f"{src.stem}.pdf")
        pages += text_to_pdf(src.read_text(encoding="utf-8"), pdfs[-1])
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for pdf in pdfs:
            source = load_file(pdf)
            clean_document(source.name, source.text, source.line_pages)
        best = min(best, time.perf_counter() - t)
    return pages, pages / best


def _latencies(qa: PolicyQA, questions: list[str]) -> tuple[list[float], list[float]]:
    retrieve, ask = [], []
    for q in questions[:5]:
        qa.ask(q)  # warm up
    for q in questions:
        t = time.perf_counter()
        qa.retrieve(q, k=5)
        retrieve.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        qa.ask(q)
        ask.append((time.perf_counter() - t) * 1000)
    return retrieve, ask


def _varied_copies(corpus: Path, out: Path, copies: int) -> None:
    """k copies of each document, each with its own title line so no chunk is a duplicate."""
    out.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for src in sorted(corpus.glob("*.txt")):
            text = src.read_text(encoding="utf-8")
            (out / f"{src.stem}_copy{k:03d}.txt").write_text(f"写し{k}号 {src.stem}\n\n{text}", encoding="utf-8")


def _scaled_index(base: Path, out: Store | Path, scale: int) -> None:
    """An index of `scale` copies of the corpus in `out` (any store): real vectors + noise, text tagged per copy.

    Each copy's terms are the original's plus its tag's (tokenizing 1000 copies would dominate the build).
    """
    store = out if isinstance(out, Store) else open_store(out)
    stored = read_index(base)
    vectors = stored.vectors()
    tokenizer = default_tokenizer()
    base_terms = corpus_terms(stored.nodes, tokenizer)
    sentence_rows: dict[int, list[np.ndarray]] = {}
    for (row, _, _), vector in zip(stored.sentence_spans, stored.sentence_vectors()):
        sentence_rows.setdefault(row, []).append(vector)
    rng = np.random.default_rng(0)

    def noisy(vector: np.ndarray) -> np.ndarray:
        out = vector + rng.normal(0, 0.01, vector.shape).astype(np.float32)
        return out / np.linalg.norm(out)

    nodes, rows, sentence_vectors, terms = [], [], [], []
    for k in range(scale):
        tag_terms = tokenizer.terms(f"（写し{k}）")
        for row, (node, vector) in enumerate(zip(stored.nodes, vectors)):
            copy = node.model_copy(deep=True)
            copy.id_ = f"{node.node_id}~{k}"
            copy.text = f"{node.text}（写し{k}）"
            copy.metadata["doc"] = f"{node.metadata['doc']}~{k}"
            nodes.append(copy)
            terms.append(base_terms[row] + tag_terms)
            rows.append(noisy(vector))
            originals = sentence_rows.get(row) or [vector]
            for i in range(len(node_sentences([copy]))):  # the tag may add a sentence: reuse the last vector
                sentence_vectors.append(noisy(originals[min(i, len(originals) - 1)]))
    m = stored.manifest
    manifest = Manifest(
        m.embedder, m.dim, m.chunker, m.tokenizer, {f"{n}~{k}": {} for n in m.files for k in range(scale)}
    )
    manifest.latent = m.latent  # each copy keeps its original's latent terms (the tag changes them little)
    latent = None if stored.latent is None else scipy.sparse.vstack([stored.latent] * scale, format="csr")
    store.write(manifest, nodes, np.vstack(rows), terms, np.vstack(sentence_vectors), latent)


STORE_ROWS = ("faiss flat", "faiss hnsw", "pgvector")


def approximate_rows(
    base: Path, work: Path, scales: list[int], questions: list[str], pg_url: str | None = None,
    rows: tuple[str, ...] = STORE_ROWS[:2],
) -> list[str]:  # fmt: skip
    """Per scale and store: build time, disk, serving RSS, retrieve p50/p95 and recall@10 against exact search.

    Each store is read by a fresh process (`serve_figures`), so its RSS is what an app process holding
    that index would use. FAISS flat is exact, so it is always built: it is the recall reference.
    The pgvector row needs `pg_url` (a database it may write versions into).
    """
    import os

    import rag.store.faiss as faiss_store

    out = ["scale  chunks  store        build s  disk MiB  RSS MiB  retrieve p50/p95 ms  recall@10"]
    for scale in scales:
        exact: dict[str, list[str]] = {}
        for label in ("faiss flat", *[r for r in rows if r != "faiss flat"]):
            if label == "pgvector" and not pg_url:
                continue
            t = time.perf_counter()
            if label == "pgvector":
                from rag.store.postgres import PostgresStore

                store = PostgresStore(pg_url)
                _scaled_index(base, store, scale)
                build, location, disk = time.perf_counter() - t, pg_url, _pg_size(store)
                store.close()
            else:
                faiss_store.HNSW_MIN_VECTORS = 10**12 if label == "faiss flat" else 0
                root = work / f"scaled_{scale}_{label.split()[1]}"
                _scaled_index(base, root, scale)
                build, location, disk = time.perf_counter() - t, str(root), _dir_size(root)
                faiss_store.HNSW_MIN_VECTORS = int(os.environ.get("SEISAKU_QA_HNSW_MIN", "50000"))
            served = _serve_in_process(location, questions)
            if label == "faiss flat":
                exact = served["found"]
            found, times = served["found"], served["ms"]
            recall = np.mean([len(set(found[q]) & set(exact[q])) / max(len(exact[q]), 1) for q in questions])
            out.append(
                f"{scale:5d}  {served['chunks']:6d}  {label:11s}  {build:7.1f}  {disk / 2**20:8.0f}  "
                f"{served['rss_mib']:7.0f}  {percentile(times, 50):8.1f} / {percentile(times, 95):6.1f}  {recall:9.3f}"
            )
            print(out[-1], flush=True)
            if label != "pgvector":
                shutil.rmtree(location, ignore_errors=True)
    return out


def _serve_in_process(location: str, questions: list[str]) -> dict:
    """`serve_figures` in a fresh Python process (its RSS is the store's, not this benchmark's)."""
    import json

    from rag.store.postgres import redact

    done = subprocess.run(
        [sys.executable, "-m", "eval.bench", "--serve", location],
        input=json.dumps(questions, ensure_ascii=False), capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:  # say why: the serving process's own error, not just its exit status
        where = redact(location) if location.startswith("postgres") else location
        raise RuntimeError(f"serving {where} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serve_figures(location: str, questions: list[str]) -> dict:
    """Load the live index at `location` as the app does, retrieve top 10 for each question (twice: the
    first pass warms caches), and report chunk count, node ids found, per-question ms and the process RSS."""
    qa = PolicyQA.load(store=location)
    found: dict[str, list[str]] = {}
    for q in questions:
        qa.retrieve(q, k=10)
    times = []
    for q in questions:
        t = time.perf_counter()
        found[q] = [h.node.node_id for h in qa.retrieve(q, k=10)]
        times.append((time.perf_counter() - t) * 1000)
    for q in questions[:10]:  # the answer side too, so what it holds is counted
        qa.ask(q)
    return {"chunks": len(qa.index.nodes), "found": found, "ms": times, "rss_mib": _rss_mib()}


def _pg_size(store) -> int:
    """Bytes of the live version's partitions (tables and indexes) in the database."""
    from rag.store.postgres import PARTITIONED, _partition

    version = store.current()

    def size(conn) -> int:
        names = [_partition(t, version).as_string(conn).strip('"') for t in PARTITIONED]
        row = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname = ANY(%s)",
                           (names,)).fetchone()  # fmt: skip
        return int(row[0] or 0)

    return store.run(size)


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def print_pdf_speed(work: Path) -> float:
    pages, rate = pdf_pages_per_second(work / "pdf")
    verdict = "ok" if rate >= PDF_PAGES_PER_SECOND_TARGET else f"below the {PDF_PAGES_PER_SECOND_TARGET} pages/s target"
    font = f"{FONT}, embedded" if FONT_EMBEDDED else f"{FONT}, not embedded: install fonts-ipafont-mincho"
    print(f"PDF text extraction + cleaning: {rate:.0f} pages/s over {pages} pages ({font}; embedder apart; {verdict})")
    return rate


def main(
    scales: list[int] | None = None, pdf_only: bool = False, pg_url: str | None = None,
    rows: tuple[str, ...] = STORE_ROWS[:2], scaled_only: bool = False,
) -> int:  # fmt: skip
    """The whole benchmark; `scaled_only` runs just the store rows at each scale (`approximate_rows`)."""
    scales = scales or [100]
    scale = max(scales)
    questions = [q.question for q in load_questions(QUESTIONS)]
    work = Path(tempfile.mkdtemp(prefix="seisaku-bench-"))
    try:
        print_pdf_speed(work)
        if pdf_only:
            return 0
        index = work / "index"
        t = time.perf_counter()
        first = ingest([corpus_dir()], index, progress=False)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        ingest([corpus_dir()], index, progress=False)
        noop = time.perf_counter() - t
        print(f"cold ingest: {cold:.1f} s ({first.chunks} chunks); no-change re-ingest: {noop:.2f} s")
        print(f"index size on disk: {_dir_size(index) / 2**20:.2f} MiB")
        if scaled_only:
            approximate_rows(index, work, scales, questions[:60], pg_url, rows)
            return 0

        qa = PolicyQA.load(index)
        retrieve, ask = _latencies(qa, questions)
        print(f"warm retrieve p50 {percentile(retrieve, 50):.1f} ms, p95 {percentile(retrieve, 95):.1f} ms")
        print(f"warm ask      p50 {percentile(ask, 50):.1f} ms, p95 {percentile(ask, 95):.1f} ms")
        for label, threads in (("library default", cores()), ("query setting", QUERY_THREADS)):
            threadpool_limits(limits=threads)  # BLAS and OpenMP pools (rag.config sets them at load)
            retrieve, _ = _latencies(qa, questions[:40])
            print(f"retrieve with {threads} BLAS/OpenMP threads ({label}): p50 {percentile(retrieve, 50):.1f} ms, "
                  f"p95 {percentile(retrieve, 95):.1f} ms")  # fmt: skip
        set_threads("query")

        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "rag.cli", "ask", questions[0], "--index", str(index)],
            check=True,
            capture_output=True,
        )
        print(f"fresh process to first answer (CLI): {time.perf_counter() - t:.2f} s")

        for copies in (1, 2, 3):
            corpus = work / f"copies{copies}"
            _varied_copies(corpus_dir(), corpus, copies)
            t = time.perf_counter()
            summary = ingest([corpus], work / f"index{copies}", progress=False)
            took = time.perf_counter() - t
            print(f"ingest {copies}x corpus: {took:.1f} s ({summary.chunks} chunks, {took / copies:.1f} s per copy)")

        big = work / f"index_x{scale}"
        _scaled_index(index, big, scale)
        big_qa = PolicyQA.load(big)
        retrieve, ask = _latencies(big_qa, questions)
        print(
            f"{scale}x corpus ({len(big_qa.index.nodes)} chunks, {_dir_size(big) / 2**20:.0f} MiB): "
            f"retrieve p50 {percentile(retrieve, 50):.1f} ms, p95 {percentile(retrieve, 95):.1f} ms; "
            f"ask p50 {statistics.median(ask):.1f} ms"
        )
        approximate_rows(index, work, scales, questions[:60], pg_url, rows)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process: {peak:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:  # one row of `approximate_rows`, in its own process
        import json

        print(json.dumps(serve_figures(sys.argv[2], json.load(sys.stdin)), ensure_ascii=False))
        sys.exit(0)
    sys.exit(main([int(x) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else [100]))
