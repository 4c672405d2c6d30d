"""Default locations, overridable by environment variables (the app and CLI share them).

Read at call time, not import time, so a process (or a test) that sets the
variable after importing `rag` still gets what it asked for.
"""

from __future__ import annotations

import os
from pathlib import Path


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
