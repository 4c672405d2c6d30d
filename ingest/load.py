"""Load source files into text, detecting their encoding.

Loaders are registered by file suffix so new formats slot in without touching the
pipeline: `@register(".pdf")` on a function from bytes to `Loaded` (text, encoding and,
for paged formats, the page of every text line). PDF, Word and HTML loaders live in
`ingest.load_pdf`, `ingest.load_docx` and `ingest.load_html`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Encodings tried in order when a file is not UTF-8. Japanese government files
# are UTF-8, Shift_JIS/CP932 or EUC-JP in practice; strict decoding tells them apart.
_FALLBACK_ENCODINGS = ("cp932", "euc_jp")
# A policy document's extracted text is well under a few MB; 16 MiB of text would take hours to
# embed on a CPU, so larger files are refused up front with the reason rather than ingested.
MAX_FILE_BYTES = 16 * 1024 * 1024
# PDF and Word files carry images and fonts besides their text, so they may be larger on disk.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


class LoadError(Exception):
    """A file that cannot be ingested; the message says why, in one line."""


@dataclass(frozen=True)
class SourceText:
    """The decoded text of one source file, with what identifies it."""

    name: str  # file name, the document id everywhere downstream
    path: Path
    text: str
    encoding: str
    sha256: str
    line_pages: tuple[int, ...] = ()  # 1-based page of each line of `text` (PDF); empty when not paged


@dataclass(frozen=True)
class Loaded:
    """What a loader makes of a file's bytes."""

    text: str  # lines separated by "\n"
    encoding: str  # the text encoding, or the format ("pdf", "docx") for binary formats
    line_pages: tuple[int, ...] = ()  # page of each line of `text`, for formats that have pages


Loader = Callable[[bytes], Loaded]
_LOADERS: dict[str, Loader] = {}
_MAX_BYTES: dict[str, int] = {}


def register(*suffixes: str, max_bytes: int = MAX_FILE_BYTES) -> Callable[[Loader], Loader]:
    """Register a loader for the given file suffixes (lower-case, with dot) and their size limit."""

    def wrap(fn: Loader) -> Loader:
        for suffix in suffixes:
            _LOADERS[suffix] = fn
            _MAX_BYTES[suffix] = max_bytes
        return fn

    return wrap


def max_bytes(suffix: str) -> int:
    """The size limit for files with this suffix."""
    return _MAX_BYTES.get(suffix.lower(), MAX_FILE_BYTES)


def supported_suffixes() -> tuple[str, ...]:
    return tuple(sorted(_LOADERS))


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM), else CP932, else EUC-JP.

    Raises LoadError for binary data or bytes no candidate decodes cleanly.
    """
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes)")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        first_error = utf8_error
    for encoding in _FALLBACK_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            return text, encoding
    raise LoadError(f"not valid UTF-8, Shift_JIS or EUC-JP (first bad byte at offset {first_error.start})")


def _looks_like_text(text: str) -> bool:
    """Reject decodings that are mostly control characters (binary that happened to decode)."""
    if not text:
        return True
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\r\n\f")
    return controls / len(text) < 0.01


@register(".txt", ".md")
def load_text(data: bytes) -> Loaded:
    text, encoding = decode(data)
    return Loaded(text.replace("\r\n", "\n").replace("\r", "\n"), encoding)


def read_source(path: Path) -> bytes:
    """The raw bytes of a loadable file; every failure becomes a LoadError naming the reason."""
    if path.suffix.lower() not in _LOADERS:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    if path.is_symlink() and not path.exists():
        raise LoadError("broken symbolic link")
    try:
        size = path.stat().st_size
        limit = max_bytes(path.suffix)
        if size > limit:
            raise LoadError(
                f"file too large ({size / 2**20:.1f} MiB > {limit // 2**20} MiB): split it into smaller files"
            )
        data = path.read_bytes()
    except PermissionError:
        raise LoadError("permission denied") from None
    except FileNotFoundError:
        raise LoadError("file disappeared before it could be read") from None
    except IsADirectoryError:
        raise LoadError("is a directory") from None
    if not data:
        raise LoadError("empty file (0 bytes)")
    if not data.strip():
        raise LoadError("empty file (only whitespace)")
    return data


def parse_source(path: Path, data: bytes) -> SourceText:
    """Decode bytes already read from `path` with the loader registered for its suffix."""
    loaded = _LOADERS[path.suffix.lower()](data)
    return SourceText(
        path.name, path, loaded.text, loaded.encoding, hashlib.sha256(data).hexdigest(), loaded.line_pages
    )


def load_file(path: Path) -> SourceText:
    """Read and decode one file."""
    return parse_source(path, read_source(path))


def check_inside(path: Path, roots: list[Path]) -> None:
    """Refuse a file found under a corpus directory that resolves (through a link) outside it."""
    for root in roots:
        if path.is_relative_to(root) and not path.resolve().is_relative_to(root.resolve()):
            raise LoadError(f"links to {path.resolve()}, outside the corpus directory {root}")


def discover(paths: list[Path]) -> list[Path]:
    """Files under the given files/directories that a loader is registered for, sorted."""
    found: set[Path] = set()
    for root in paths:
        if root.is_dir():
            found.update(p for p in root.rglob("*") if (p.is_file() or p.is_symlink()) and p.suffix.lower() in _LOADERS)
        elif root.exists():
            found.add(root)
    return sorted(found, key=lambda p: (p.name, str(p)))


# the other formats register themselves on import; they need `register` and `LoadError` above
from ingest import load_docx, load_html, load_pdf  # noqa: E402, F401
