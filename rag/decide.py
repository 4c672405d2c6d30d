"""The fitted answer decision: P(this sentence answers the question), and whether any does.

One gradient-boosted model (LightGBM) over `rag.features.FEATURES` replaces the
hand-tuned sentence scores and abstention rules. It is fitted by `rag train`
(`eval/train.py`) with cross-validation grouped by document, and ships as a
small text file beside this module with the abstention threshold chosen on the
held-apart folds. The question is answered when the best candidate's
probability reaches the threshold; further sentences join it when they are
nearly as likely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.features import FEATURES

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "decider.txt"  # LightGBM text model
CARD_FILE = MODEL_DIR / "decider.json"  # features, threshold, training data and figures

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


class DeciderError(RuntimeError):
    """The model file is missing or was fitted on other features; the message names the command to run."""


@dataclass
class Decider:
    """Scores candidates with the fitted model; abstains below `threshold`."""

    booster: object
    threshold: float
    card: dict = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    @classmethod
    def load(cls, model_file: Path = MODEL_FILE, card_file: Path = CARD_FILE) -> Decider:
        import lightgbm

        try:
            card = json.loads(Path(card_file).read_text(encoding="utf-8"))
            booster = lightgbm.Booster(model_file=str(model_file))
        except (OSError, ValueError, lightgbm.basic.LightGBMError) as exc:
            raise DeciderError(f"answer model unreadable ({exc}): run `rag train`") from exc
        if tuple(card.get("features", ())) != FEATURES:
            raise DeciderError("answer model was fitted on other features: run `rag train`")
        return cls(booster, float(card["threshold"]), card)


def fit(features: np.ndarray, labels: np.ndarray, rounds: int = ROUNDS):
    """A LightGBM booster on candidate rows; deterministic (one thread, fixed seed)."""
    import lightgbm

    data = lightgbm.Dataset(features, label=labels, feature_name=list(FEATURES), free_raw_data=False)
    return lightgbm.train(PARAMS, data, num_boost_round=rounds)


@lru_cache(maxsize=1)
def default_decider() -> Decider:
    """The shipped model, loaded once per process."""
    return Decider.load()
