"""Fitting the learned ranker (`rag.rerank`): which of the rankings' candidate chunks hold a question's evidence.

A row is one chunk of the union of the four rankings' top RANK_DEPTH for one
question, labelled by whether it holds one of the question's evidence strings
(in the question's own documents). Only answerable questions with evidence
train it. Folds are grouped by document (JSQuAD: article): the figures, and
the fold models `rag train` reads its decision's training rows through, come
from models fitted without the question's document, so the decision learns
from rankings as they look on documents the ranker never saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eval.data import load_questions
from eval.metrics import contains_evidence
from rag.rerank import (
    RANK_DEPTH,
    RANK_FEATURES,
    RANK_PARAMS,
    RANK_ROUNDS,
    RANKER_CARD,
    RANKER_FILE,
    LearnedRanker,
    fit_ranker,
)  # fmt: skip

if TYPE_CHECKING:
    from eval.train import Source
    from rag.qa import PolicyQA

FOLDS = 5
FUSED_RANK = RANK_FEATURES.index("fused_rank")


@dataclass
class RankRows:
    features: list[np.ndarray] = field(default_factory=list)  # per question: candidates x RANK_FEATURES
    evidence: list[np.ndarray] = field(default_factory=list)  # per question: candidates x evidence strings, bool
    groups: list[str] = field(default_factory=list)  # per question: "index:document", the fold group
    source: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)


def group_of(source: Source, docs: list[str]) -> str | None:
    """The fold group of a question with these documents (None for one without: no ranker was fitted on it)."""
    return f"{source.index}:{docs[0]}" if docs else None


@dataclass
class FoldRankers:
    """Per fold group, the ranker fitted without it; questions of no group (unanswerable) get the full one."""

    by_group: dict[str, LearnedRanker]
    full: LearnedRanker

    def for_question(self, source: Source, docs: list[str]) -> LearnedRanker:
        return self.by_group.get(group_of(source, docs) or "", self.full)


def collect_rank_rows(sources: list[Source], loaded: dict[Path, PolicyQA], progress: bool = True) -> RankRows:
    """Candidate chunks and their labels for every answerable question with evidence."""
    from tqdm import tqdm

    rows = RankRows()
    for source in sources:
        qa = loaded[source.index]
        for q in tqdm(load_questions(source.questions), desc=f"ranking {source.name}", disable=not progress):
            if not q.answerable or not q.evidence:
                continue
            union, features = qa.retriever.ranking_rows(q.question)
            if not union:
                continue
            found = np.array(
                [
                    [contains_evidence(node.get_content(), ev) for ev in q.evidence]
                    if not q.docs or node.metadata.get("doc") in q.docs
                    else [False] * len(q.evidence)
                    for node in qa.index.nodes_at(union)
                ],
                dtype=bool,
            ).reshape(len(union), len(q.evidence))
            rows.features.append(features)
            rows.evidence.append(found)
            rows.groups.append(group_of(source, q.docs) or "")
            rows.source.append(source.name)
            rows.kind.append(str(q.extra.get("kind", q.type)))
    return rows


def fold_of(rows: RankRows, folds: int = FOLDS) -> dict[str, int]:
    """Group -> fold, whole documents (articles) to one fold (fewer folds when there are fewer groups)."""
    from sklearn.model_selection import GroupKFold

    groups = np.array(rows.groups)
    out: dict[str, int] = {}
    splits = GroupKFold(n_splits=min(folds, len(set(rows.groups))))
    for fold, (_, test) in enumerate(splits.split(groups, groups=groups)):
        out.update((g, fold) for g in groups[test])
    return out


def fit(rows: RankRows, mask: np.ndarray | None = None) -> LearnedRanker:
    """A ranker fitted on the selected questions (all when `mask` is None)."""
    picked = [i for i in range(len(rows.features)) if mask is None or mask[i]]
    features = np.vstack([rows.features[i] for i in picked])
    labels = np.concatenate([rows.evidence[i].any(axis=1) for i in picked]).astype(int)
    return LearnedRanker(fit_ranker(features, labels, [len(rows.features[i]) for i in picked]))


def order_metrics(order: np.ndarray, evidence: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Recall@k (share of evidence strings in the top k) and reciprocal rank within the top 10."""
    ranked = evidence[order]
    recall = float(ranked[:k].any(axis=0).mean()) if evidence.shape[1] else 0.0
    hits = np.flatnonzero(ranked[:10].any(axis=1))
    return recall, (1.0 / (hits[0] + 1) if len(hits) else 0.0)


def figures(rows: RankRows, scores: list[np.ndarray], mask: np.ndarray) -> dict:
    """Recall@5 and MRR@10 of the fusion's order and of the learned order on the selected questions."""
    fusion, learned = [], []
    for i in np.flatnonzero(mask):
        fused_order = np.argsort(rows.features[i][:, FUSED_RANK], kind="stable")
        fusion.append(order_metrics(fused_order, rows.evidence[i]))
        learned.append(order_metrics(np.argsort(-scores[i], kind="stable"), rows.evidence[i]))
    f, lr = np.array(fusion).reshape(-1, 2), np.array(learned).reshape(-1, 2)
    return {
        "questions": int(mask.sum()),
        "fusion_recall_at_5": round(float(f[:, 0].mean()), 3),
        "learned_recall_at_5": round(float(lr[:, 0].mean()), 3),
        "fusion_mrr_at_10": round(float(f[:, 1].mean()), 3),
        "learned_mrr_at_10": round(float(lr[:, 1].mean()), 3),
    }


def train_ranker(
    sources: list[Source],
    loaded: dict[Path, PolicyQA],
    model_file: Path = RANKER_FILE,
    card_file: Path = RANKER_CARD,
    progress: bool = True,
) -> tuple[dict, FoldRankers]:
    """Cross-validate, fit on every question, write the model and its card; returns the card and the rankers."""
    rows = collect_rank_rows(sources, loaded, progress)
    folds = fold_of(rows)
    question_fold = np.array([folds[g] for g in rows.groups])
    by_fold = [fit(rows, question_fold != f) for f in range(max(folds.values()) + 1)]
    scores = [by_fold[question_fold[i]].scores(rows.features[i]) for i in range(len(rows.features))]
    sources_of, kinds = np.array(rows.source), np.array(rows.kind)
    names = [s.name for s in sources]
    card = {
        "features": list(RANK_FEATURES),
        "depth": RANK_DEPTH,
        "params": RANK_PARAMS,
        "rounds": RANK_ROUNDS,
        "label": "the chunk holds one of the question's evidence strings (in its documents)",
        "training_data": {n: [str(s.questions) for s in sources if s.name == n] for n in dict.fromkeys(names)},
        "questions": len(rows.features),
        "candidates": int(sum(len(f) for f in rows.features)),
        "cross_validation": {
            "folds": len(by_fold),
            "grouped_by": "document (JSQuAD: article)",
            "all": figures(rows, scores, np.ones(len(scores), bool)),
            **{f"source:{s}": figures(rows, scores, sources_of == s) for s in sorted(set(rows.source))},
            **{f"kind:{k}": figures(rows, scores, kinds == k) for k in sorted(set(rows.kind))},
        },
    }
    full = fit(rows)
    full.card = card
    model_file.parent.mkdir(parents=True, exist_ok=True)
    full.booster.save_model(str(model_file))
    card_file.write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return card, FoldRankers({g: by_fold[f] for g, f in folds.items()}, full)
