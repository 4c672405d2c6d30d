"""Adding files to and removing them from the corpus folder (the app's upload), checked before they land.

A file is refused before it is written when `rag ingest` would skip it (unsupported type, over the
size limit, a scan, encrypted, damaged, no text) or when the corpus already holds the same bytes, so
the folder only ever holds documents that index. Writes go to a temporary name and are renamed into
place, so an ingest running meanwhile never reads half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ingest.load import LoadError, discover, max_bytes, supported_suffixes
from ingest.pipeline import IngestConfig, split_source  # the pipeline's own steps: the check matches ingest

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


@dataclass(frozen=True)
class Added:
    name: str  # the name the file was saved under
    replaced: bool  # a file of that name was there before (with other content)


def sanitize_name(name: str) -> str:
    """A safe file name for an uploaded file: no directories, control or shell-special characters,
    no leading dot, a lower-case suffix; Japanese characters are kept."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = _UNSAFE.sub("_", stem).strip(" ._") or "document"
    suffix = _UNSAFE.sub("", suffix).lower()
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1]
    return f"{stem}.{suffix}" if suffix else stem


def limits_text() -> str:
    """The upload limits, as the app states them."""
    by_limit: dict[int, list[str]] = {}
    for suffix in supported_suffixes():
        by_limit.setdefault(max_bytes(suffix), []).append(suffix)
    parts = [f"{' '.join(s)}: {limit // 2**20} MiB まで" for limit, s in sorted(by_limit.items(), reverse=True)]
    return "、".join(parts)


def _hashes(corpus: Path) -> dict[str, str]:
    """sha256 → file name of every loadable file in the corpus."""
    out = {}
    for path in discover([corpus]):
        try:
            out[hashlib.sha256(path.read_bytes()).hexdigest()] = path.name
        except OSError:
            continue
    return out


def check_document(name: str, data: bytes) -> None:
    """Raise LoadError with the reason `rag ingest` would give for skipping this file."""
    suffix = Path(name).suffix.lower()
    if suffix not in supported_suffixes():
        raise LoadError(f"unsupported file type {suffix or '(none)'} (supported: {', '.join(supported_suffixes())})")
    if len(data) > max_bytes(suffix):
        raise LoadError(f"file too large ({len(data) / 2**20:.1f} MiB > {max_bytes(suffix) // 2**20} MiB)")
    if not data.strip():
        raise LoadError("empty file (0 bytes)" if not data else "empty file (only whitespace)")
    split_source(Path(name), data, IngestConfig())


def add_document(corpus: Path, name: str, data: bytes) -> Added:
    """Save an uploaded file into the corpus under its sanitized name; LoadError says why it is refused."""
    safe = sanitize_name(name)
    digest = hashlib.sha256(data).hexdigest()
    existing = _hashes(corpus)
    if digest in existing:
        raise LoadError(f"既にある資料 {existing[digest]} と同じ内容です（内容のハッシュが一致）")
    check_document(safe, data)
    corpus.mkdir(parents=True, exist_ok=True)
    target = corpus / safe
    replaced = target.exists()
    fd, temp = tempfile.mkstemp(dir=corpus, prefix=".upload-", suffix=".part")  # not a loadable suffix
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Added(safe, replaced)


def remove_document(corpus: Path, name: str) -> None:
    """Delete one document file from the corpus folder (only a file directly in it)."""
    target = corpus / name
    if Path(name).name != name or not target.is_file() or target.resolve().parent != corpus.resolve():
        raise LoadError(f"{name} は資料フォルダ {corpus} 直下のファイルではないため削除できません")
    target.unlink()
