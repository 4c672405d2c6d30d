"""Answers to 「N つの…」 questions from the document's own numbered list.

「基本計画の4つの方針は？」 is answered by four headings that sit in four
different chunks, so no single passage holds the answer and the sentence
composer cites one item. Policy documents number such lists (①②③, 1. 2.,
(1) (2), or bullets under a heading), so when a heading above a retrieved
passage introduces exactly as many items as the question asks for, those
items, each cited where it stands, are the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.schema import NodeWithScore, TextNode

from rag.candidates import section_path
from rag.compose import Citation, cite
from rag.text import Tokenizer, normalize, sentence_spans

_KANJI_DIGITS = {c: i for i, c in enumerate("一二三四五六七八九十", 1)}
_ASKS_COUNT = re.compile(r"([0-9]+|[一二三四五六七八九十])\s*(?:つ(?!目)|原則|方針|本柱|項目|要素|分野|段階|類型|点)")
_ASKS_ORDINAL = re.compile(r"([0-9]+|[一二三四五六七八九十])\s*(?:つ目|番目)|第\s*([0-9]+|[一二三四五六七八九十])\s*の")
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
# (family, pattern): the item number is group 1, except for bullets
_MARKERS = (
    ("circled", re.compile(f"^([{_CIRCLED}])")),
    ("dotted", re.compile(r"^([0-9]{1,2})[.．]\s")),
    ("paren", re.compile(r"^[(（]([0-9]{1,2})[)）]")),
    ("bullet", re.compile(r"^[・•]")),
)
MAX_ITEM_CHARS = 80  # an item is a heading or a short line, not a paragraph
MAX_ITEMS = 10


@dataclass
class _Item:
    node: TextNode
    span: tuple[int, int]
    text: str


def _to_int(token: str) -> int:
    return int(token) if token.isdigit() else _KANJI_DIGITS[token]


def asked_count(question: str) -> int | None:
    """N in 「N つの」「N 原則」「N 方針」…, or None."""
    m = _ASKS_COUNT.search(normalize(question))
    n = _to_int(m.group(1)) if m else 0
    return n if 2 <= n <= MAX_ITEMS else None


def asked_ordinal(question: str) -> int | None:
    """K in 「K つ目」「K 番目」「第 K の」: only that item is asked for."""
    m = _ASKS_ORDINAL.search(normalize(question))
    return _to_int(m.group(1) or m.group(2)) if m else None


def _number(family: str, match: re.Match) -> int | None:
    if family == "bullet":
        return None
    token = match.group(1)
    return _CIRCLED.index(token) + 1 if family == "circled" else int(token)


class OutlineAnswerer:
    """Finds a numbered list of exactly the asked length under a heading of a retrieved passage."""

    def __init__(self, document_nodes: Callable[[str], list[TextNode]], tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._document_nodes = document_nodes  # a document's chunks in order (the snapshot's `document_nodes`)

    def answer(self, question: str, hits: list[NodeWithScore]) -> tuple[str, list[Citation]] | None:
        """(answer text with [n] markers, citations), or None when no list fits the question."""
        count = asked_count(question)
        if count is None:
            return None
        q_terms = {t for t in self.tokenizer.query_terms(question) if not t.isdigit()}  # 「4」 matches 「第4章」
        for hit in hits:
            path = section_path(hit.node)
            for depth in range(len(path) - 1, -1, -1):  # the nearest heading first
                heading = path[depth]
                if not set(self.tokenizer.terms(heading)) & q_terms:
                    continue  # the heading must be about what the question names
                items = self._list_under(hit.node.metadata["doc"], path[: depth + 1], count)
                if items:
                    ordinal = asked_ordinal(question)
                    if ordinal and 1 <= ordinal <= len(items):
                        items = [items[ordinal - 1]]
                    return _compose(items, hit.score or 0.0)
        return None

    def _list_under(self, doc: str, prefix: list[str], count: int) -> list[_Item] | None:
        """The items 1..count of one marker family in the section `prefix`, if there are exactly that many."""
        by_family: dict[str, list[tuple[int | None, _Item]]] = {}
        for node in self._document_nodes(doc):
            if section_path(node)[: len(prefix)] != prefix:
                continue
            text = node.get_content()
            for start, end in sentence_spans(text):
                shown = " ".join(text[start:end].split())  # as written, for a verbatim citation
                if len(shown) > MAX_ITEM_CHARS:
                    continue
                for family, pattern in _MARKERS:
                    m = pattern.match(shown if family == "circled" else normalize(shown))  # NFKC turns ① into 1
                    if m:
                        by_family.setdefault(family, []).append((_number(family, m), _Item(node, (start, end), shown)))
                        break
        for family, found in by_family.items():
            if family == "bullet":
                if len(found) == count:
                    return [item for _, item in found]
                continue
            numbers = [n for n, _ in found]
            if numbers == list(range(1, count + 1)):
                return [item for _, item in found]
        return None


def _compose(items: list[_Item], score: float) -> tuple[str, list[Citation]]:
    """Each item cited in the chunk it stands in; a chunk holding several items is cited once."""
    numbers, citations = cite([(NodeWithScore(node=item.node, score=score), item.span) for item in items])
    text = "\n".join(f"{item.text}[{n}]" for item, n in zip(items, numbers))  # one item per line
    return text, citations
