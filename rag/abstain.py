"""Decide whether the cited passages actually support an answer to the question.

On-topic questions the documents cannot answer (罰金の上限額, 補助率 ...)
retrieve close passages, so similarity alone cannot tell them apart. What
does: how much of the question's weighted vocabulary the cited passages
contain, and how much of it the corpus has never seen. A verb, adjective or
adverb the corpus never uses (飛ばす, 外す, 止まる), or a サ変 noun used as a
verb (例示される), is the asker's wording, not a missing topic, so it counts
neither way; a missing noun (罰金, 議事録) is a topic the documents do not
cover. A question that asks for a quantity (何人, いくら) is not answered by
passages that state none of its kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.asked import AskedFor
from rag.synonyms import SynonymGroups
from rag.text import QUESTION_WORDS, Tokenizer, normalize

WORDING_POS = frozenset({"動詞", "形容詞", "副詞"})  # unseen words of these kinds are ignored
SYNONYM_POS = frozenset({"名詞"})  # words of these kinds count as present when a synonym is


@dataclass(frozen=True)
class Support:
    coverage: float  # idf-weighted share of question terms present in the cited passages
    unseen: float  # idf-weighted share of question terms absent from the whole corpus
    quantity_missing: bool = False  # 「何人」 asked and no 「N人」 in the cited sentences


@dataclass(frozen=True)
class AbstainPolicy:
    """Logistic score over (coverage, unseen); abstain when P(answerable) < threshold.

    Fitted (class-balanced, C=10) on eval/questions.jsonl (128 questions with a
    composed answer, 14 of them unanswerable); leave-one-out cross-validation,
    abstention recall / false abstention by threshold: 0.30 → 0.86 / 0.044,
    0.40 → 0.93 / 0.044, 0.50 → 0.93 / 0.061. Without synonym credit the best was
    0.93 / 0.061. Raise the threshold to abstain more, lower it to answer more.
    """

    w_coverage: float = 3.90
    w_unseen: float = -7.84
    bias: float = -1.44
    threshold: float = 0.4
    # Questions without Japanese: answer only if a cited sentence is at least this close in meaning.
    min_similarity: float = 0.86

    def p_answerable(self, support: Support) -> float:
        z = self.w_coverage * support.coverage + self.w_unseen * support.unseen + self.bias
        return 1.0 / (1.0 + math.exp(-z))

    def abstain(self, support: Support) -> bool:
        return support.quantity_missing or self.p_answerable(support) < self.threshold


class SupportMeter:
    """Measures how well cited passages cover a question, against the corpus vocabulary.

    A noun the passages (or the corpus) lack still counts as present (or seen) when
    a word of the same Sudachi synonym group is there: 土台 is covered by 基盤.
    Only nouns get this credit; a verb's synonym group is too broad (使う ~ 利用, 使用)
    and an unseen verb is ignored anyway.
    """

    def __init__(self, idf: dict[str, float], tokenizer: Tokenizer, synonyms: SynonymGroups) -> None:
        self.idf = idf
        self.tokenizer = tokenizer
        self.synonyms = synonyms
        self._corpus_groups = synonyms.groups_of(idf)
        self._unseen_weight = max(idf.values(), default=1.0)

    def _synonym_in(self, term: str, pos: str, groups: frozenset[int]) -> bool:
        return pos in SYNONYM_POS and not self.synonyms.groups(term).isdisjoint(groups)

    def measure(self, question: str, cited_texts: list[str], cited_sentences: list[str] | None = None) -> Support:
        """Support of the cited passages for `question`; a quantity asked for must be in the cited sentences."""
        tagged = dict((t, pos) for t, pos in self.tokenizer.tagged_terms(question) if t not in QUESTION_WORDS)
        # The tokenizer may split a word differently in the passage (…インスティテュート所長): spelled out is present.
        cited = normalize(" ".join(cited_texts)).lower()
        verbatim = {t for t in tagged if len(t) >= 2 and t in cited}
        seen = {
            t
            for t, pos in tagged.items()
            if t in self.idf or t in verbatim or self._synonym_in(t, pos, self._corpus_groups)
        }
        terms = {t: pos for t, pos in tagged.items() if t in seen or pos not in WORDING_POS}
        if not terms:
            return Support(0.0, 0.0)
        weights = {t: self.idf.get(t, self._unseen_weight) for t in terms}
        total = sum(weights.values()) or 1.0
        present = set(self.tokenizer.terms(" ".join(cited_texts)))
        present_groups = self.synonyms.groups_of(present)
        covered = {
            t for t, pos in terms.items() if t in present or t in verbatim or self._synonym_in(t, pos, present_groups)
        }
        return Support(
            coverage=sum(w for t, w in weights.items() if t in covered) / total,
            unseen=sum(w for t, w in weights.items() if t not in seen) / total,
            quantity_missing=AskedFor.of(question).quantity_missing(cited_sentences or cited_texts),
        )
