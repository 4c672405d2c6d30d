"""Features of a candidate sentence against a question: what the fitted decision reads.

Three kinds, all plain measurements and no decisions: how each ranking placed
the sentence's passage (dense chunk, dense sentence, BM25, fused), how much of
the question's idf-weighted vocabulary the sentence, its headings and its
passage contain (and how much the corpus has never seen), and whether the
sentence holds the kind of answer the question asks for (いつ → a date,
何社 → 「9社」, 誰 → a person's title, いくら → a sum of money) and the word the
question asks about (「室長は誰」 → 室長: a sentence about the office that never
names its head does not answer). How these
weigh against each other is learned (`rag.decide`), not written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rag.candidates import Candidate
from rag.retrieve import CANDIDATES, Retrieval
from rag.text import QUESTION_WORDS, Tokenizer, normalize, squash
from rag.wordvectors import WordVectors, default_word_vectors

DATE = re.compile(r"(\d{4}|令和|平成|[0-9０-９]+)\s*(年|月|日)|年度")
NUMBER = re.compile(r"[0-9０-９]")
_ASKS_DATE = re.compile(r"いつ|何年|何月|何日|日付|時期|when", re.IGNORECASE)
_ASKS_NUMBER = re.compile(
    r"何件|何人|何社|何回|何か国|何組織|いくつ|何割|何%|何％|どのくらい|どれくらい|数は|人数|how many", re.IGNORECASE
)
_ASKS_DEFINITION = re.compile(r"とは|って何|ってなに|何ですか|どういう|どのような|どんな|意味|定義|目的|what is", re.I)
_ASKS_PERSON = re.compile(r"誰|だれ|どなた|何者|who\b", re.IGNORECASE)
_ASKS_WHERE = re.compile(r"どこ|どの(省|機関|組織|国)|where\b", re.IGNORECASE)
_ASKS_COUNT = re.compile(
    r"何\s*(社|人|名|件|回|組織|か国|カ国|ヶ国|倍|割|機関|府省|団体|項目|種類|分野|本|%|円|か月|カ月|ヶ月|時間|歳)"
)
_ASKS_MONEY = re.compile(r"いくら|何円|金額|お金|(額|予算|費用?)(は|が)?(どれくらい|どのくらい|どの程度)")
_ASKS_RATE = re.compile(r"(率|割合)(は|が)?(どれくらい|どのくらい|どの程度)")
_ASKS_AMOUNT = re.compile(r"(量|数|規模)(は|が)?(どれくらい|どのくらい|どの程度)")
_ASKS_INTERVAL = re.compile(r"何\s*(年|か月|カ月|ヶ月|週間|日)\s*(ごと|毎|おき)|頻度")
_WH = re.compile(r"誰|だれ|どなた|何|なに|なん|いつ|どこ|どの|どう|どんな|どれ|どちら|いくつ|いくら|なぜ|どうして")
_YES_NO_END = re.compile(
    r"(か|の|アリ|あり|OK|大丈夫|いい|良い|よい|べき|ですか|ますか|でしょうか|だよね|よね|って本当)[？?]?$"
)
_DEFINED_TERM = re.compile(r"([A-Za-z0-9ァ-ヶー一-龥・]{2,})」?(?:とは|って何|ってなに)")
_NUMERAL = r"[0-9一二三四五六七八九十百千万億兆]+(?:[.,][0-9]+)*\s*"
_PEOPLE, _COUNTRIES, _MONTHS = "人|名", "か国|カ国|ヶ国|ヵ国", "か月|カ月|ヶ月|ヵ月"
_SAME_COUNTER = {"人": _PEOPLE, "名": _PEOPLE, "か国": _COUNTRIES, "カ国": _COUNTRIES, "ヶ国": _COUNTRIES}
_SAME_COUNTER |= {"か月": _MONTHS, "カ月": _MONTHS, "ヶ月": _MONTHS}
_DIGITS = r"[0-9一二三四五六七八九十]+"
_MONEY = re.compile(_NUMERAL + r"(?:円|億|万|兆)")
_PERCENT = re.compile(_NUMERAL + r"(?:%|割|パーセント)|分の\s*" + _DIGITS)
_EVERY = r"毎(?:年|月|週|日)|随時|定期的|年\s*" + _DIGITS + r"\s*回"
_INTERVAL = re.compile(_EVERY + "|" + _NUMERAL + r"(?:年|か月|カ月|ヶ月|週間|日)\s*(?:ごと|毎|おき)")
# (how a question asks for a quantity, what an answer must then state); the first match wins
_QUANTITIES = [(_ASKS_MONEY, _MONEY), (_ASKS_RATE, _PERCENT), (_ASKS_INTERVAL, _INTERVAL), (_ASKS_AMOUNT, NUMBER)]
_DEFINITION = re.compile(r"とは|をいう|という|を指す|と定義|を目的と|を意味する")
_PERSON = re.compile(r"氏|大臣|長官|本部長|副本部長|座長|委員長|教授|所長|理事長|議長|総理|首相|会長|社長|代表")
_PLACE = re.compile(r"省|庁|機関|本部|会議|研究所|大学|政府|委員会|国|都|府|県|市")
WORDING_POS = frozenset({"動詞", "形容詞", "副詞"})


@dataclass(frozen=True)
class AskedFor:
    """The kind of answer a question asks for, read off its wording."""

    date: bool
    number: bool
    definition: bool
    person: bool
    place: bool
    yes_no: bool
    counter: re.Pattern | None  # 「9社」 when the question says 「何社」
    quantity: re.Pattern | None  # what an answer must state: a count, a sum of money or any number
    subject: re.Pattern | None  # 「Xは」 when the question says 「Xとは」

    @classmethod
    def of(cls, question: str) -> AskedFor:
        plain = normalize(question)
        count = _ASKS_COUNT.search(plain)
        counter = None
        if count:
            unit = _SAME_COUNTER.get(count.group(1), re.escape(count.group(1)))
            counter = re.compile(_NUMERAL + f"(?:{unit})")
        quantity = counter or next((stated for asks, stated in _QUANTITIES if asks.search(plain)), None)
        term = _DEFINED_TERM.search(plain)
        return cls(
            date=bool(_ASKS_DATE.search(plain)),
            number=bool(_ASKS_NUMBER.search(plain)),
            definition=bool(_ASKS_DEFINITION.search(plain)),
            person=bool(_ASKS_PERSON.search(plain)),
            place=bool(_ASKS_WHERE.search(plain)),
            yes_no=not _WH.search(plain) and bool(_YES_NO_END.search(plain.rstrip("。 "))),
            counter=counter,
            quantity=quantity,
            subject=re.compile(re.escape(squash(term.group(1))) + "(?:は|とは|」とは)") if term else None,
        )


# The feature vector, in this order; the model file records these names and is checked against them.
FEATURES = (
    # how the rankings placed the passage
    "rank", "fused_share", "passage_score", "fusion_share", "chunk_cosine", "passage_best_sentence_cosine",
    "bm25_share", "chunk_rank", "sentence_rank", "bm25_rank", "is_neighbour",
    # the sentence's own similarity, against the other candidates and the whole corpus
    "sentence_cosine", "sentence_cosine_gap", "corpus_gap", "corpus_best_cosine", "corpus_z",
    # vocabulary
    "cover_sentence", "cover_context", "cover_passage", "cover_gap", "unseen_nouns", "unseen_wording",
    "soft_cover_sentence", "soft_cover_context", "soft_cover_gap", "question_words_without_vector",
    "question_terms", "question_chars",
    # kind of answer asked for, and what the sentence holds
    "asks_date", "asks_number", "asks_definition", "asks_person", "asks_place", "asks_quantity", "yes_no",
    "has_date", "has_number", "counter_match", "quantity_match", "definition_form", "subject_match",
    "footnote_defines", "person_title", "place_name", "table_row", "row_header_asked", "focus_match", "focus_weight",
    # layout
    "chars", "position", "is_label", "fragment",
)  # fmt: skip

SentenceCosine = Callable[[Candidate], float]


class FeatureBuilder:
    """Turns (question, candidates, retrieval) into a feature matrix. Thread-safe; holds only corpus statistics."""

    def __init__(self, tokenizer: Tokenizer, idf: dict[str, float], words: WordVectors | None = None) -> None:
        self.tokenizer = tokenizer
        self.words = words or default_word_vectors()
        self.idf = idf
        self._unknown_weight = max(idf.values(), default=1.0)
        # corpus sentences and headings recur across questions: tokenize each once
        self.terms = lru_cache(maxsize=65536)(lambda text: frozenset(tokenizer.terms(text)))

    def _weight(self, term: str) -> float:
        return self.idf.get(term, self._unknown_weight)

    def _focus(self, question: str, weights: dict[str, float]) -> str | None:
        """The word the question asks about: the last noun before its first question word (「室長は誰」 → 室長)."""
        plain = normalize(question)
        wh = _WH.search(plain)
        if not wh:
            return None
        before = [t for t, pos in self.tokenizer.tagged_terms(plain[: wh.start()]) if pos not in WORDING_POS]
        before = [t for t in before if t not in QUESTION_WORDS]
        return before[-1] if before and before[-1] in weights else None

    def build(self, question: str, cands: list[Candidate], retrieval: Retrieval, cosine: SentenceCosine) -> np.ndarray:
        asked = AskedFor.of(question)
        tagged = dict((t, pos) for t, pos in self.tokenizer.tagged_terms(question) if t not in QUESTION_WORDS)
        weights = {t: self._weight(t) for t in tagged}
        total = sum(weights.values()) or 1.0
        unseen_nouns = sum(w for t, w in weights.items() if t not in self.idf and tagged[t] not in WORDING_POS)
        unseen_wording = sum(w for t, w in weights.items() if t not in self.idf and tagged[t] in WORDING_POS)

        def cover(text_terms: set[str], text: str) -> float:
            spelled = normalize(text).lower()  # a word the index split differently is still spelled out
            return sum(w for t, w in weights.items() if t in text_terms or (len(t) >= 2 and t in spelled)) / total

        q_words = list(weights)
        q_weights = np.array([weights[t] for t in q_words], dtype=np.float32)
        no_vector = sum(w for t, w in weights.items() if self.words.row(t) is None) / total
        focus = self._focus(question, weights)

        def closest(text_terms: frozenset[str]) -> np.ndarray:
            """Each question word's closest word in the text: 1 when it is there, else the best cosine."""
            if not q_words or not text_terms:
                return np.zeros(len(q_words), dtype=np.float32)
            best = self.words.similarity(q_words, sorted(text_terms)).max(axis=1).clip(0.0, 1.0)
            best[[i for i, t in enumerate(q_words) if t in text_terms]] = 1.0
            return best

        def soft_cover(best: np.ndarray) -> float:
            """`closest`, idf-weighted."""
            return float(best @ q_weights) / total if len(best) else 0.0

        def focus_match(best: np.ndarray, text: str) -> float:
            """How closely the text holds the asked-about word: 1 spelled out, else its nearest word's cosine."""
            if focus is None:
                return -1.0
            if len(focus) >= 2 and focus in normalize(text).lower():
                return 1.0
            return float(best[q_words.index(focus)])

        top_fused = max((c.hit.score or 0.0 for c in cands), default=0.0) or 1.0
        top_fusion = max((c.signals.fusion for c in cands), default=0.0) or 1.0
        top_bm25 = retrieval.top_bm25 or 1.0
        rows = []
        cosines = [cosine(c) for c in cands]
        best_cosine = max(cosines, default=0.0)
        for cand, s_cos in zip(cands, cosines):
            meta = cand.node.metadata
            passage_terms = self.terms(f"{meta.get('section', '')} {meta.get('defines', '')} {cand.node.get_content()}")
            defines = meta.get("defines", "")
            s_terms = self.terms(f"{defines} {cand.text}")
            h_terms = self.terms(cand.headings)
            in_context = closest(s_terms | h_terms)  # read by the soft coverage and the asked-about word
            plain = normalize(cand.text)
            sig = cand.signals
            header = cand.text.split("\t", 1)[0] if "\t" in cand.text else ""
            header_terms = self.terms(header) - QUESTION_WORDS if header else frozenset()
            rows.append(
                [
                    cand.rank,
                    (cand.hit.score or 0.0) / top_fused,
                    cand.hit.score or 0.0,
                    sig.fusion / top_fusion,
                    sig.chunk_cosine,
                    sig.sentence_cosine,
                    sig.bm25 / top_bm25,
                    min(sig.chunk_rank, CANDIDATES),
                    min(sig.sentence_rank, CANDIDATES),
                    min(sig.bm25_rank, CANDIDATES),
                    cand.is_neighbour,
                    s_cos,
                    best_cosine - s_cos,
                    retrieval.best_sentence_cosine - s_cos,
                    retrieval.best_sentence_cosine,
                    retrieval.sentence_cosine_z,
                    cover(s_terms, f"{defines} {cand.text}"),
                    cover(s_terms | h_terms, f"{cand.headings} {cand.text}"),
                    cover(passage_terms, cand.node.get_content()),
                    0.0,  # cover_gap, filled below
                    unseen_nouns / total,
                    unseen_wording / total,
                    soft_cover(closest(s_terms)),
                    soft_cover(in_context),
                    0.0,  # soft_cover_gap, filled below
                    no_vector,
                    len(weights),
                    len(question),
                    asked.date,
                    asked.number,
                    asked.definition,
                    asked.person,
                    asked.place,
                    asked.quantity is not None,
                    asked.yes_no,
                    bool(DATE.search(plain)),
                    bool(NUMBER.search(plain)),
                    bool(asked.counter and asked.counter.search(plain)),
                    bool(asked.quantity and asked.quantity.search(plain)),
                    bool(_DEFINITION.search(plain)),
                    bool(asked.subject and asked.subject.search(squash(cand.text))),
                    bool(defines) and bool(self.terms(defines) & set(tagged)),
                    bool(_PERSON.search(plain)),
                    bool(_PLACE.search(plain)),
                    bool(header),
                    bool(header_terms) and header_terms <= set(tagged),
                    focus_match(in_context, f"{cand.headings} {defines} {cand.text}"),
                    weights[focus] if focus else -1.0,
                    len(plain),
                    cand.index / max(cand.sentences, 1),
                    cand.is_label,
                    len(plain) < 12,
                ]
            )
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))
        if len(rows):
            column = FEATURES.index("cover_context")
            matrix[:, FEATURES.index("cover_gap")] = matrix[:, column].max() - matrix[:, column]
            column = FEATURES.index("soft_cover_context")
            matrix[:, FEATURES.index("soft_cover_gap")] = matrix[:, column].max() - matrix[:, column]
        return matrix
