"""Runtime settings from the environment (the app, CLI and ingest share them): locations, switches, thread pools.

Read at call time, not import time, so a process (or a test) that sets the
variable after importing `rag` still gets what it asked for.

Thread pools are set on purpose: the embedder, numpy's OpenBLAS and FAISS' OpenMP
otherwise contend for the cores. At query time each question is small: one BLAS
thread (a matrix product over the sentence vectors leaves extra BLAS threads
spinning while the next query is embedded) and one OpenMP thread; concurrency
comes from serving several questions at once. Ingest embeds large batches, so it
gets every core. $SEISAKU_QA_THREADS=off leaves the libraries' own defaults; a
number sets the query-time pool size.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

QUERY_THREADS = 1  # BLAS/OpenMP threads per query process (see above)


def corpus_dir() -> Path:
    return Path(os.environ.get("SEISAKU_QA_CORPUS", "corpus"))


def index_dir() -> Path:
    return Path(os.environ.get("SEISAKU_QA_INDEX", "index"))


def feedback_path() -> Path:
    return Path(os.environ.get("SEISAKU_QA_FEEDBACK", "feedback/feedback.jsonl"))


def upload_allowed() -> bool:
    """Whether the app lets users add and remove documents (`SEISAKU_QA_ALLOW_UPLOAD=1`; off by default)."""
    return os.environ.get("SEISAKU_QA_ALLOW_UPLOAD", "") == "1"


def tuned_queries_enabled() -> bool:
    """Whether questions go through the tuned question encoder (`SEISAKU_QA_TUNED_QUERIES=0` turns it off)."""
    return os.environ.get("SEISAKU_QA_TUNED_QUERIES", "1") != "0"


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(role: str) -> int | None:
    """Size the BLAS/OpenMP (and torch, when loaded) pools for `role` ("query" or "ingest"); returns the size."""
    setting = os.environ.get("SEISAKU_QA_THREADS", "")
    if setting == "off":
        return None
    n = cores() if role == "ingest" else int(setting or QUERY_THREADS)
    threadpool_limits(limits=n)  # process-wide, every BLAS and OpenMP library loaded so far
    if "torch" in sys.modules:  # sentence-transformers embedders run on torch's own intra-op pool
        sys.modules["torch"].set_num_threads(max(n, 1) if role == "ingest" else cores())
    return n
