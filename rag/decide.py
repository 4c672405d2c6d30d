"""The fitted answer decision: P(this sentence answers the question), and whether any does.

One gradient-boosted model (LightGBM) over `rag.features.FEATURES` replaces the
hand-tuned sentence scores and abstention rules. It is fitted by `rag train`
(`eval/train.py`) with cross-validation grouped by document, and ships as a
small text file beside this module. Whether to answer at all is a second fitted
model over the question as a whole (the top candidates' probabilities and the
best candidate's features): a sentence model trained to tell answer sentences
from their neighbours ranks well but calibrates answerability poorly on
colloquial questions, and a model fitted on that very label does better
(README). The question is answered when its probability reaches the threshold
chosen on the held-apart folds; further sentences join the best one when they
are nearly as likely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.features import FEATURES

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "decider.txt"  # LightGBM text model: P(this sentence answers)
ANSWERABLE_FILE = MODEL_DIR / "answerable.txt"  # LightGBM text model: P(the documents answer this question)
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
    *(f"best_{name}" for name in FEATURES),
)  # fmt: skip


def question_features(probabilities: np.ndarray, features: np.ndarray) -> np.ndarray:
    """One row per question: the top three sentence probabilities, how many are likely, the best one's features."""
    if not len(probabilities):
        return np.zeros(len(QUESTION_FEATURES))
    order = np.argsort(-probabilities, kind="stable")
    top = np.pad(probabilities[order[:3]], (0, max(0, 3 - len(order))))
    counts = [(probabilities > 0.1).sum(), (probabilities > 0.3).sum(), len(probabilities)]
    return np.concatenate([[top[0], top[1], top[2], top[0] - top[1], *counts], features[order[0]]])


class DeciderError(RuntimeError):
    """The model file is missing or was fitted on other features; the message names the command to run."""


@dataclass
class Decider:
    """Scores candidates (`booster`) and the question (`answerable_booster`); abstains below `threshold`.

    `sentence_threshold` is the least probability a further sentence needs to join the answer.
    """

    booster: object
    answerable_booster: object
    threshold: float
    sentence_threshold: float
    card: dict = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    def answerability(self, probabilities: np.ndarray, features: np.ndarray) -> float:
        """P(the documents answer the question), from its candidates' probabilities and features."""
        if not len(probabilities):
            return 0.0
        row = question_features(probabilities, features)[None, :]
        return float(self.answerable_booster.predict(row, num_threads=1)[0])

    def answers(self, probabilities: np.ndarray, features: np.ndarray) -> bool:
        return self.answerability(probabilities, features) >= self.threshold

    @classmethod
    def load(
        cls, model_file: Path = MODEL_FILE, card_file: Path = CARD_FILE, answerable_file: Path = ANSWERABLE_FILE
    ) -> Decider:
        import lightgbm

        try:
            card = json.loads(Path(card_file).read_text(encoding="utf-8"))
            booster = lightgbm.Booster(model_file=str(model_file))
            answerable = lightgbm.Booster(model_file=str(answerable_file))
            thresholds = float(card["threshold"]), float(card["sentence_threshold"])
        except (OSError, ValueError, KeyError, lightgbm.basic.LightGBMError) as exc:
            raise DeciderError(f"answer model unreadable ({exc}): run `rag train`") from exc
        if tuple(card.get("features", ())) != FEATURES or tuple(card.get("question_features", ())) != QUESTION_FEATURES:
            raise DeciderError("answer model was fitted on other features: run `rag train`")
        return cls(booster, answerable, *thresholds, card)


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
