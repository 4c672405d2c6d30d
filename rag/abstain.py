"""Decide whether the cited passages actually support an answer to the question.

On-topic questions the documents cannot answer (罰金の上限額, 補助率 ...)
retrieve close passages, so similarity alone cannot tell them apart. What
does: how much of the question's weighted vocabulary the cited passages
contain, and how much of it the corpus has never seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.text import Tokenizer


@dataclass(frozen=True)
class Support:
    coverage: float  # idf-weighted share of question terms present in the cited passages
    unseen: float  # idf-weighted share of question terms absent from the whole corpus


@dataclass(frozen=True)
class AbstainPolicy:
    """Logistic score over (coverage, unseen); abstain when P(answerable) < threshold.

    Fitted on eval/questions.jsonl (132 questions, 14 unanswerable); leave-one-out
    cross-validation at threshold 0.4: abstention recall 0.93, false abstention 0.085.
    Raise the threshold to abstain more, lower it to answer more.
    """

    w_coverage: float = 3.25
    w_unseen: float = -2.83
    bias: float = -1.36
    threshold: float = 0.4

    def p_answerable(self, support: Support) -> float:
        z = self.w_coverage * support.coverage + self.w_unseen * support.unseen + self.bias
        return 1.0 / (1.0 + math.exp(-z))

    def abstain(self, support: Support) -> bool:
        return self.p_answerable(support) < self.threshold


def measure_support(question: str, cited_texts: list[str], idf: dict[str, float], tokenizer: Tokenizer) -> Support:
    terms = list(dict.fromkeys(tokenizer.query_terms(question)))
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
