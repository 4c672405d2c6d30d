"""Text normalization and tokenization shared by ingest and query time.

Both sides must normalize identically, otherwise a query never matches the
index; that is why this lives in the query library and ingest imports it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

# "A I" / "Ａ Ｉ" written with a space between the letters (PDF extraction artifact).
_SPACED_AI = re.compile(r"(?<![A-Za-zＡ-Ｚａ-ｚ])([AＡ])[ \u3000]+([IＩ])(?![A-Za-zＡ-Ｚａ-ｚ])")
_WHITESPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"[^\n]+?(?:[。！？!?]+[」』）)]*|$)", re.MULTILINE)

# Parts of speech kept as BM25 terms: content words. Particles, auxiliaries,
# symbols and light verbs (する, ある, なる ...) carry no topic.
CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞", "接尾辞", "接頭辞"})
_LIGHT_POS2 = frozenset({"非自立可能"})
# Words that frame a question rather than name its topic (誰, 何, 教える, 資料 ...).
QUESTION_WORDS = frozenset(
    """
    誰 何 なに いつ どこ どう どの どんな どれ どちら いくつ 幾つ 言う いう 教える 挙げる 書く 述べる 説明
    資料 記載 ある いる なる 思う 知る 分かる わかる 簡単 具体 的 中 場合 もの こと ため よう
    とき 時 せい 主に 呼ぶ 読む 意味 番号 名前 担当 扱う 付け 文書 いく つ さ 目 それぞれ 言える テーマ ほう
    いつ頃 いつごろ
    """.split()
)


_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def has_japanese(text: str) -> bool:
    """Kana or kanji present: the question can share words with the (Japanese) corpus."""
    return bool(_JAPANESE.search(text))


def join_spaced_ai(text: str) -> str:
    """Turn `A I` (an extraction artifact) into `AI`, keeping the letters' width."""
    return _SPACED_AI.sub(r"\1\2", text)


def normalize(text: str) -> str:
    """Search form of a text: NFKC, `A I` joined, runs of whitespace collapsed."""
    return _WHITESPACE.sub(" ", join_spaced_ai(unicodedata.normalize("NFKC", text))).strip()


def squash(text: str) -> str:
    """Comparison form: `normalize` with all whitespace removed (for evidence matching)."""
    return _WHITESPACE.sub("", normalize(text))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: ends at 。！？ or at a line break (list items, table rows)."""
    spans = []
    for m in _SENTENCE.finditer(text):
        start, end = m.start(), m.end()
        chunk = text[start:end]
        start += len(chunk) - len(chunk.lstrip())
        if start < end and text[start:end].strip():
            spans.append((start, end))
    return spans


class Tokenizer:
    """fugashi (unidic-lite) tokenizer producing BM25 terms.

    MeCab taggers are not thread-safe, so each thread gets its own tagger.
    """

    name = "fugashi-unidic-lite/content-v1"

    def __init__(self) -> None:
        self._local = threading.local()

    def _tagger(self):
        tagger = getattr(self._local, "tagger", None)
        if tagger is None:
            import fugashi

            tagger = self._local.tagger = fugashi.Tagger()
        return tagger

    def query_terms(self, text: str) -> list[str]:
        """Terms of a question, without the words that only frame it."""
        return [t for t in self.terms(text) if t not in QUESTION_WORDS]

    def terms(self, text: str) -> list[str]:
        """Content-word terms (base forms, lower-cased) of `text`."""
        return [term for term, _ in self.tagged_terms(text)]

    def particle_offsets(self, text: str, particle: str) -> set[int]:
        """Offsets in `text` (as given, already normalized) where `particle` stands as a particle (助詞).

        「いいところと悪いところ」: only the third と joins two things; the others are inside ところ.
        """
        out, offset = set(), 0
        for word in self._tagger()(text):
            offset += len(word.white_space)
            if word.surface == particle and word.feature.pos1 == "助詞":
                out.add(offset)
            offset += len(word.surface)
        return out

    def tagged_terms(self, text: str) -> list[tuple[str, str]]:
        """(term, part of speech) of each content word of `text`.

        A サ変 noun used as a verb (例示される, 用意して) is tagged 動詞: it is a predicate.
        """
        out: list[tuple[str, str]] = []
        words = list(self._tagger()(normalize(text)))
        for word, following in zip(words, [*words[1:], None]):
            feature = word.feature
            if feature.pos1 not in CONTENT_POS or feature.pos2 in _LIGHT_POS2:
                continue
            base = getattr(feature, "orthBase", None) or word.surface
            pos = feature.pos1
            if pos == "名詞" and feature.pos3 == "サ変可能" and following and following.feature.lemma == "為る":
                pos = "動詞"
            out.append((base.lower(), pos))
        return out


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """One shared tokenizer per process (the tagger dictionary load is the slow part)."""
    return Tokenizer()
