"""Decide whether the cited passages actually support an answer to the question.

On-topic questions the documents cannot answer (罰金の上限額, 補助率 ...)
retrieve close passages, so similarity alone cannot tell them apart. What
does: how much of the question's weighted vocabulary the cited passages
contain, and how much of it the corpus has never seen. A verb, adjective or
adverb the corpus never uses (飛ばす, 外す, 止まる) is the asker's wording,
not a missing topic, so it counts neither way; a missing noun (罰金,
議事録) is a topic the documents do not cover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.text import QUESTION_WORDS, Tokenizer

WORDING_POS = frozenset({"動詞", "形容詞", "副詞"})  # unseen words of these kinds are ignored


@dataclass(frozen=True)
class Support:
    coverage: float  # idf-weighted share of question terms present in the cited passages
    unseen: float  # idf-weighted share of question terms absent from the whole corpus


@dataclass(frozen=True)
class AbstainPolicy:
    """Logistic score over (coverage, unseen); abstain when P(answerable) < threshold.

    Fitted (class-balanced) on eval/questions.jsonl (132 questions, 14 unanswerable);
    leave-one-out cross-validation, abstention recall / false abstention by threshold:
    0.30 → 0.71 / 0.051, 0.35 → 0.79 / 0.051, 0.40 → 0.93 / 0.059, 0.50 → 0.93 / 0.102.
    Raise the threshold to abstain more, lower it to answer more.
    """

    w_coverage: float = 3.40
    w_unseen: float = -2.92
    bias: float = -1.53
    threshold: float = 0.4
    # Questions without Japanese: answer only if a cited sentence is at least this close in meaning.
    min_similarity: float = 0.86

    def p_answerable(self, support: Support) -> float:
        z = self.w_coverage * support.coverage + self.w_unseen * support.unseen + self.bias
        return 1.0 / (1.0 + math.exp(-z))

    def abstain(self, support: Support) -> bool:
        return self.p_answerable(support) < self.threshold


def measure_support(question: str, cited_texts: list[str], idf: dict[str, float], tokenizer: Tokenizer) -> Support:
    tagged = dict((t, pos) for t, pos in tokenizer.tagged_terms(question) if t not in QUESTION_WORDS)
    terms = [t for t, pos in tagged.items() if t in idf or pos not in WORDING_POS]
    if not terms:
        return Support(0.0, 0.0)
    unseen_weight = max(idf.values(), default=1.0)
    weights = {t: idf.get(t, unseen_weight) for t in terms}
    total = sum(weights.values()) or 1.0
    present = set(tokenizer.terms(" ".join(cited_texts)))
    return Support(
        coverage=sum(w for t, w in weights.items() if t in present) / total,
        unseen=sum(w for t, w in weights.items() if t not in idf) / total,
    )
