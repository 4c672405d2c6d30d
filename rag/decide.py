"""The fitted answer decision: P(this sentence answers the question), and whether any does.

One gradient-boosted model (LightGBM) over `rag.features.FEATURES` replaces the
hand-tuned sentence scores and abstention rules. It is fitted by `rag train`
(`eval/train.py`) with cross-validation grouped by document, and ships as a
small text file beside this module. Whether to answer at all is a second fitted
model over the question as a whole (the top candidates' probabilities and the
best candidate's features): a sentence model trained to tell answer sentences
from their neighbours ranks well but calibrates answerability poorly on
colloquial questions, and a model fitted on that very label does better
(README). That model also reads a prior from the question's wording alone
(`QuestionPrior`): what is asked (a sum, a schedule, a name, a concrete
procedure) says much about whether policy documents state it, and on
questions by other writers that prior separates answerable from unanswerable
better than any sentence feature. The question is answered when its probability reaches the threshold
chosen on the held-apart folds; further sentences join the best one when they
are nearly as likely.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.features import FEATURES
from rag.text import normalize

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "decider.txt"  # LightGBM text model: P(this sentence answers)
ANSWERABLE_FILE = MODEL_DIR / "answerable.txt"  # LightGBM text model: P(the documents answer this question)
PRIOR_FILE = MODEL_DIR / "prior.npz"  # character n-gram logistic: P(answerable) from the question's wording
CARD_FILE = MODEL_DIR / "decider.json"  # features, thresholds, training data and figures

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 300
# the question-level model has one row per question, not per candidate: fewer rows, a smaller model
QUESTION_PARAMS = PARAMS | {"learning_rate": 0.03, "num_leaves": 7}
QUESTION_ROUNDS = 300
QUESTION_FEATURES = (
    "best_p", "second_p", "third_p", "best_margin", "candidates_over_0_1", "candidates_over_0_3", "candidates",
    *(f"best_{name}" for name in FEATURES), "question_prior",
)  # fmt: skip
PRIOR_NGRAMS = (1, 2, 3)  # character n-grams of the normalized, lower-cased question
PRIOR_BUCKETS = 1 << 20  # n-grams are hashed (CRC-32) into this many buckets
PRIOR_MIN_QUESTIONS = 2  # an n-gram seen in fewer training questions is dropped
PRIOR_C = 1.0  # inverse L2 strength of the logistic regression


def question_features(probabilities: np.ndarray, features: np.ndarray, prior: float) -> np.ndarray:
    """One row per question: the top three sentence probabilities, how many are likely, the best one's features,
    and the prior from the question's wording."""
    if not len(probabilities):
        return np.zeros(len(QUESTION_FEATURES))
    order = np.argsort(-probabilities, kind="stable")
    top = np.pad(probabilities[order[:3]], (0, max(0, 3 - len(order))))
    counts = [(probabilities > 0.1).sum(), (probabilities > 0.3).sum(), len(probabilities)]
    return np.concatenate([[top[0], top[1], top[2], top[0] - top[1], *counts], features[order[0]], [prior]])


def _ngram_counts(question: str) -> Counter[int]:
    plain = normalize(question).lower()
    return Counter(
        zlib.crc32(plain[i : i + n].encode("utf-8")) % PRIOR_BUCKETS
        for n in PRIOR_NGRAMS
        for i in range(len(plain) - n + 1)
    )


@dataclass(frozen=True)
class QuestionPrior:
    """P(answerable) from the question's wording alone: tf-idf of character n-grams, logistic regression.

    `buckets` (sorted) are the n-gram hashes kept at fitting time, with their idf and coefficient.
    """

    buckets: np.ndarray
    idf: np.ndarray
    coef: np.ndarray
    intercept: float

    def _vector(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        counts = _ngram_counts(question)
        keys = np.fromiter(counts, dtype=np.int64, count=len(counts))
        pos = np.searchsorted(self.buckets, keys).clip(0, max(len(self.buckets) - 1, 0))
        kept = (self.buckets[pos] == keys) if len(self.buckets) else np.zeros(len(keys), bool)
        pos = pos[kept]
        tf = np.array([1.0 + math.log(counts[k]) for k in keys[kept]])
        values = tf * self.idf[pos]
        norm = float(np.linalg.norm(values))
        return pos, values / norm if norm else values

    def __call__(self, question: str) -> float:
        pos, values = self._vector(question)
        z = float(values @ self.coef[pos]) + self.intercept
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def fit(cls, questions: Sequence[str], answerable: Sequence[bool]) -> QuestionPrior:
        """Deterministic (lbfgs from zero); the smoothed idf and sublinear tf of scikit-learn's TfidfVectorizer."""
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(answerable, dtype=int)
        if len(set(labels.tolist())) < 2:  # nothing to tell apart: the share of answerable questions, or even odds
            share = float(labels.mean()) if len(labels) else 0.5
            empty = np.zeros(0)
            return cls(empty.astype(np.int64), empty, empty, math.log(max(share, 1e-3) / max(1 - share, 1e-3)))
        counts = [_ngram_counts(q) for q in questions]
        df = Counter(k for c in counts for k in c)
        buckets = np.array(sorted(k for k, n in df.items() if n >= PRIOR_MIN_QUESTIONS), dtype=np.int64)
        idf = np.log((1 + len(questions)) / (1 + np.array([df[k] for k in buckets], dtype=np.float64))) + 1.0
        prior = cls(buckets, idf, np.zeros(len(buckets)), 0.0)
        data, indices, indptr = [], [], [0]
        for q in questions:
            pos, values = prior._vector(q)
            data.extend(values)
            indices.extend(pos)
            indptr.append(len(indices))
        matrix = csr_matrix((data, indices, indptr), shape=(len(questions), len(buckets)))
        model = LogisticRegression(C=PRIOR_C, max_iter=5000).fit(matrix, labels)
        return cls(buckets, idf, model.coef_[0].astype(np.float64), float(model.intercept_[0]))

    def save(self, path: Path) -> None:
        with open(path, "wb") as out:  # np.savez would add ".npz" to a name without it
            np.savez_compressed(
                out, buckets=self.buckets, idf=self.idf.astype(np.float32), coef=self.coef.astype(np.float32),
                intercept=np.array([self.intercept]),
            )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> QuestionPrior:
        with np.load(path) as f:
            idf, coef = f["idf"].astype(np.float64), f["coef"].astype(np.float64)
            return cls(f["buckets"], idf, coef, float(f["intercept"][0]))


class DeciderError(RuntimeError):
    """The model file is missing or was fitted on other features; the message names the command to run."""


@dataclass
class Decider:
    """Scores candidates (`booster`) and the question (`answerable_booster`); abstains below `threshold`.

    `sentence_threshold` is the least probability a further sentence needs to join the answer.
    """

    booster: object
    answerable_booster: object
    prior: QuestionPrior
    threshold: float
    sentence_threshold: float
    card: dict = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    def answerability(self, probabilities: np.ndarray, features: np.ndarray, question: str) -> float:
        """P(the documents answer the question), from its candidates' probabilities and features and its wording."""
        if not len(probabilities):
            return 0.0
        row = question_features(probabilities, features, self.prior(question))[None, :]
        return float(self.answerable_booster.predict(row, num_threads=1)[0])

    def answers(self, probabilities: np.ndarray, features: np.ndarray, question: str) -> bool:
        return self.answerability(probabilities, features, question) >= self.threshold

    @classmethod
    def load(
        cls,
        model_file: Path = MODEL_FILE,
        card_file: Path = CARD_FILE,
        answerable_file: Path = ANSWERABLE_FILE,
        prior_file: Path = PRIOR_FILE,
    ) -> Decider:
        import lightgbm

        try:
            card = json.loads(Path(card_file).read_text(encoding="utf-8"))
            booster = lightgbm.Booster(model_file=str(model_file))
            answerable = lightgbm.Booster(model_file=str(answerable_file))
            prior = QuestionPrior.load(prior_file)
            thresholds = float(card["threshold"]), float(card["sentence_threshold"])
        except (OSError, ValueError, KeyError, EOFError, lightgbm.basic.LightGBMError) as exc:
            raise DeciderError(f"answer model unreadable ({exc}): run `rag train`") from exc
        if tuple(card.get("features", ())) != FEATURES or tuple(card.get("question_features", ())) != QUESTION_FEATURES:
            raise DeciderError("answer model was fitted on other features: run `rag train`")
        return cls(booster, answerable, prior, *thresholds, card)


def fit(features: np.ndarray, labels: np.ndarray, rounds: int = ROUNDS):
    """A LightGBM booster on candidate rows; deterministic (one thread, fixed seed)."""
    import lightgbm

    data = lightgbm.Dataset(features, label=labels, feature_name=list(FEATURES), free_raw_data=False)
    return lightgbm.train(PARAMS, data, num_boost_round=rounds)


def fit_answerable(features: np.ndarray, answerable: np.ndarray):
    """The question-level booster: one row per question (`question_features`), labelled answerable or not."""
    import lightgbm

    data = lightgbm.Dataset(features, label=answerable, feature_name=list(QUESTION_FEATURES), free_raw_data=False)
    return lightgbm.train(QUESTION_PARAMS, data, num_boost_round=QUESTION_ROUNDS)


@lru_cache(maxsize=1)
def default_decider() -> Decider:
    """The shipped model, loaded once per process."""
    return Decider.load()
