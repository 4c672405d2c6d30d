"""Word vectors for everyday words that the documents say otherwise (お金 ~ 予算, 仕事 ~ 雇用, 土台 ~ 基盤).

The sentence embedder cannot tell synonyms from unrelated single words
(お金/予算 0.94 but カルテ/予算 0.89); word2vec vectors can (0.41 against 0.07).
They come from the `ja-ginza` package (GiNZA, MIT; its vectors are derived from
chiVe, Apache-2.0, by Works Applications / NINJAL), read straight from its files:
`vocab/vectors` (20,000 × 300, NumPy) and `vocab/key2row` (MessagePack, spaCy's
64-bit MurmurHash of the word → row), so spaCy itself is never loaded.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

_MASK = (1 << 64) - 1
_M = 0xC6A4A7935BD1E995


@lru_cache(maxsize=262144)
def word_hash(word: str) -> int:
    """spaCy's string hash: MurmurHash64A of the UTF-8 bytes, seed 1."""
    data = word.encode("utf-8")
    h = (1 ^ (len(data) * _M)) & _MASK
    whole = len(data) // 8 * 8
    for i in range(0, whole, 8):
        k = (int.from_bytes(data[i : i + 8], "little") * _M) & _MASK
        k ^= k >> 47
        h = ((h ^ ((k * _M) & _MASK)) * _M) & _MASK
    if whole < len(data):
        h = ((h ^ int.from_bytes(data[whole:], "little")) * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


class WordVectors:
    """Unit-length vectors of single words; thread-safe (read-only after load)."""

    name = "chiVe via ja-ginza 5.3 (Apache-2.0)"

    def __init__(self, vectors: np.ndarray, key2row: dict[int, int]) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = (vectors / np.maximum(norms, 1e-6)).astype(np.float32)
        self.key2row = key2row
        self._lock = threading.Lock()

    @classmethod
    def load(cls, vocab: Path) -> WordVectors:
        import msgpack

        vectors = np.load(vocab / "vectors", allow_pickle=False)
        key2row = msgpack.unpackb((vocab / "key2row").read_bytes(), strict_map_key=False)
        return cls(vectors, key2row)

    def row(self, word: str) -> int | None:
        return self.key2row.get(word_hash(word))

    def similarity(self, words: list[str], others: list[str]) -> np.ndarray:
        """Cosine of every word to every other word (0 where either has no vector)."""
        out = np.zeros((len(words), len(others)), dtype=np.float32)
        a = [self.row(w) for w in words]
        b = [self.row(w) for w in others]
        ia = [i for i, r in enumerate(a) if r is not None]
        ib = [j for j, r in enumerate(b) if r is not None]
        if ia and ib:
            va = self.vectors[[a[i] for i in ia]]
            vb = self.vectors[[b[j] for j in ib]]
            out[np.ix_(ia, ib)] = va @ vb.T
        return out


def _vocab_dir() -> Path | None:
    try:
        import ja_ginza
    except ImportError:
        return None
    found = sorted(Path(ja_ginza.__file__).parent.glob("ja_ginza-*/vocab"))
    return found[-1] if found else None


@lru_cache(maxsize=1)
def default_word_vectors() -> WordVectors:
    """The vectors `ja-ginza` ships, loaded once per process."""
    vocab = _vocab_dir()
    if vocab is None:
        raise ImportError("word vectors need the ja-ginza package: pip install ja-ginza")
    return WordVectors.load(vocab)
