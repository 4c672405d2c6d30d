"""Offline follow-up resolution: carry the previous question's topic into an elliptical question."""

from __future__ import annotations

import re
from typing import TypedDict

from rag.asked import AskedFor
from rag.text import Tokenizer, normalize


class Turn(TypedDict, total=False):
    question: str
    answer: str


# Words that point back at the previous turn (それ, その法律, 同指針 ...).
_ANAPHORA = re.compile(
    r"それ|その|そこ|これ|この|あれ|あの|同法|同指針|同計画|上記|前述|彼ら|it\b|they\b|that\b", re.IGNORECASE
)
MIN_OWN_TERMS = 3  # a question with fewer content words than this leans on context
# Besides 「Xとは」, a short question names its own topic with a quoted term (「反転攻勢」って？)
# or an acronym other than AI itself (GPAI, CAIO).
_NAMED_TOPIC = re.compile(r"「[^」]{2,}」|(?<![A-Za-z])(?!AI(?![A-Za-z]))[A-Z]{2,}(?![A-Za-z])")


def names_topic(question: str) -> bool:
    """「AISIとは？」, 「システミック・リスクとは」: a short question that still stands alone."""
    return AskedFor.of(question).subject is not None or bool(_NAMED_TOPIC.search(normalize(question)))


def needs_context(question: str, tokenizer: Tokenizer) -> bool:
    if _ANAPHORA.search(question):
        return True
    return len(set(tokenizer.terms(question))) < MIN_OWN_TERMS and not names_topic(question)


def resolve_followup(question: str, history: list[Turn], tokenizer: Tokenizer) -> str:
    """The question made standalone: prefix the previous question's content words when it leans on them.

    「それはいつ施行された？」 after 「AI法とは何ですか」 becomes 「AI 法 それはいつ施行された？」,
    enough for both retrievers to find the topic again.
    """
    previous = next((t.get("question", "") for t in reversed(history) if t.get("question")), "")
    if not previous or not needs_context(question, tokenizer):
        return question
    own = set(tokenizer.terms(question))
    carried = [t for t in dict.fromkeys(tokenizer.terms(previous)) if t not in own]
    return " ".join(carried) + " " + question if carried else question
