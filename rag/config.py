"""Default locations, overridable by environment variables (the app and CLI share them)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CORPUS_DIR = Path(os.environ.get("SEISAKU_QA_CORPUS", "corpus"))
DEFAULT_INDEX_DIR = Path(os.environ.get("SEISAKU_QA_INDEX", "index"))
