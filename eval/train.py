"""`rag train`: fit the answer decision (`rag.decide`) on labelled questions, grouped by document.

Training rows are candidate sentences (`rag.candidates`) with their features
(`rag.features`); a row is positive when the sentence holds the question's
evidence (or all its keywords, on our own sets). Each source is a question
file plus the index it is asked against: our corpus with our sets, and a
JSQuAD-derived corpus (`eval.squad`) whose left-out articles give
unanswerable questions in the corpus's own vocabulary.

Cross-validation folds are grouped by document (by article for JSQuAD), never
by question, so a figure says how the decision does on documents it was not
fitted on. The abstention threshold is chosen on those out-of-fold
predictions; the final model is refitted on everything. One thread and fixed
seeds make the written files identical from run to run.

The question model also reads a prior from the question's wording
(`rag.decide.QuestionPrior`), fitted on the policy-corpus questions only
(JSQuAD's unanswerable questions differ from its answerable ones by article
alone, which no wording tells). Wherever the question model is fitted, the
prior column of its rows comes from priors fitted without those rows'
documents, as it will be at query time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.data import Question, load_questions
from eval.metrics import contains_evidence, keyword_hit, match_form
from eval.train_rank import FoldRankers
from rag.decide import (
    ANSWERABLE_FILE,
    CARD_FILE,
    MODEL_FILE,
    PARAMS,
    PRIOR_BUCKETS,
    PRIOR_C,
    PRIOR_FILE,
    PRIOR_MIN_QUESTIONS,
    PRIOR_NGRAMS,
    QUESTION_FEATURES,
    QUESTION_PARAMS,
    QUESTION_ROUNDS,
    ROUNDS,
    Decider,
    QuestionPrior,
    fit,
    fit_answerable,
    question_features,
)  # fmt: skip
from rag.features import FEATURES
from rag.qa import PolicyQA

FOLDS = 5
RETRIEVED = 10
SQUAD_PER_ARTICLE = 40  # JSQuAD questions kept per article (1,645 of the validation split's 4,442)
# Blind sets whose first runs are reported: written in users' style by writers who saw neither code nor
# other questions, they are the training data closest to what users ask, so they train the decision (one
# set, "blind", for the threshold rule). A newer blind set measures the next change and joins them after.
RETIRED_BLIND_SETS = ("questions_blind.jsonl", *(f"questions_blind{i}.jsonl" for i in range(2, 19)))
# Blind sets that choose the abstention threshold and are never fitted on. The shipped models read them as they
# read users' questions, about documents the models were fitted on; out-of-fold figures leave each question's
# document out, so their false abstention runs higher than users see. Later blind sets measure.
CALIBRATION_BLIND_SETS = tuple(f"questions_blind{i}.jsonl" for i in range(19, 23))
MAX_FALSE_ABSTENTION = 0.05  # the threshold is the highest whose false abstention stays within this


@dataclass
class Source:
    """A question file and the index its questions are asked against."""

    name: str
    questions: Path
    index: Path
    keywords_label: bool = True  # our keywords are specific; JSQuAD's short answers recur elsewhere


@dataclass
class Rows:
    features: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    question: list[np.ndarray] = field(default_factory=list)  # question number of each row
    groups: list[str] = field(default_factory=list)  # per question: its document (fold group)
    answerable: list[bool] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # per question: as asked


def answers(text: str, q: Question, keywords_label: bool) -> bool:
    """The candidate sentence holds the question's evidence (or, where keywords are specific, all of them)."""
    if not q.answerable:
        return False
    plain = match_form(text)
    for evidence in q.evidence:
        ev = match_form(evidence)
        if contains_evidence(text, evidence) or (len(plain) >= 8 and plain in ev):
            return True
    return keywords_label and bool(q.keywords) and keyword_hit(text, q.keywords)


def load_indexes(sources: list[Source], query_vectors: dict | None) -> dict[Path, PolicyQA]:
    """Each index the sources ask (our sets share one) loaded once, questions' vectors taken from
    `query_vectors` where given (see `collect`)."""
    loaded: dict[Path, PolicyQA] = {}
    for source in sources:
        if source.index not in loaded:
            loaded[source.index] = qa = PolicyQA.load(source.index)
            qa.retriever.precomputed = dict(query_vectors or {})
    return loaded


def collect(
    sources: list[Source], progress: bool = True, query_vectors: dict | None = None,
    rankers: FoldRankers | None = None, loaded: dict[Path, PolicyQA] | None = None,
) -> Rows:  # fmt: skip
    """Candidate rows of every question of every source.

    `query_vectors`: normalized question -> vector of a question encoder fitted without it
    (`eval.train_query.out_of_fold_vectors`), used instead of the shipped encoder's; `rankers`: each
    question's passages ordered by a ranker fitted without its document (`eval.train_rank`); `loaded`: the
    indexes as `load_indexes(sources, query_vectors)` gives them, when the caller has them already.
    """
    from tqdm import tqdm

    rows = Rows()
    loaded = loaded or load_indexes(sources, query_vectors)
    for source in sources:
        qa = loaded[source.index]
        for q in tqdm(load_questions(source.questions), desc=f"features {source.name}", disable=not progress):
            if rankers is not None:
                qa.retriever.ranker = rankers.for_question(source, q.docs)
            retrieval = qa.retriever.retrieve_with_signals(q.question, RETRIEVED)
            cands, feats = qa.read(q.question, retrieval)
            number = len(rows.groups)
            rows.features.append(feats)
            rows.labels.append(np.array([answers(c.text, q, source.keywords_label) for c in cands], dtype=np.float32))
            rows.question.append(np.full(len(cands), number))
            top_doc = retrieval.hits[0].node.metadata["doc"] if retrieval.hits else ""
            rows.groups.append(f"{source.index}:{q.docs[0] if q.docs else top_doc}")
            rows.answerable.append(q.answerable)
            rows.source.append(source.name)
            rows.kind.append(str(q.extra.get("kind", q.type)))
            rows.text.append(q.question)
    return rows


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")


def out_of_fold(rows: Rows, folds: int = FOLDS) -> np.ndarray:
    """Probability of every candidate row from a model fitted without its document's questions."""
    from sklearn.model_selection import GroupKFold

    X, y = np.vstack(rows.features), np.concatenate(rows.labels)
    qnum = np.concatenate(rows.question)
    groups = np.array(rows.groups)[qnum]
    oof = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        oof[test] = fit(X[train], y[train]).predict(X[test], num_threads=1)
    return oof


def policy_questions(rows: Rows) -> np.ndarray:
    """Which questions are asked of the policy corpus (not of JSQuAD's)."""
    return np.array([not s.startswith("jsquad") for s in rows.source], dtype=bool)


def fit_prior(rows: Rows, among: np.ndarray) -> QuestionPrior:
    """The wording prior fitted on the policy-corpus questions among the given question numbers."""
    policy = among[policy_questions(rows)[among]]
    return QuestionPrior.fit([rows.text[i] for i in policy], [rows.answerable[i] for i in policy])


def prior_out_of_fold(rows: Rows, among: np.ndarray | None = None, folds: int = FOLDS) -> np.ndarray:
    """The wording prior of each question (of `among`, default all) from a prior fitted without its document."""
    from sklearn.model_selection import GroupKFold

    among = np.arange(len(rows.groups)) if among is None else among
    out = np.zeros(len(rows.groups))
    groups = np.array(rows.groups)[among]
    if len(set(groups)) < 2:  # one document: no prior can be fitted without it
        out[among] = 0.5
        return out
    for train, test in GroupKFold(n_splits=min(folds, len(set(groups)))).split(among, groups=groups):
        prior = fit_prior(rows, among[train])
        out[among[test]] = [prior(rows.text[i]) for i in among[test]]
    return out


def question_matrix(rows: Rows, probabilities: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """One `question_features` row per question, from its candidates' (out-of-fold) probabilities and its prior."""
    out, offset = [], 0
    for number, feats in enumerate(rows.features):
        out.append(question_features(probabilities[offset : offset + len(feats)], feats, prior[number]))
        offset += len(feats)
    return np.array(out)


def fold_matrix(rows: Rows, matrix: np.ndarray, train: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """`matrix`'s training rows for one fold, their prior refitted out of fold among those rows alone.

    The fold's test questions are scored by a prior fitted on all its training questions; a question
    model fitted on priors that had seen the test documents would trust the prior more than it should.
    """
    inner = prior_out_of_fold(rows, train, folds)
    out = matrix[train].copy()
    if len(out):
        out[:, QUESTION_FEATURES.index("question_prior")] = inner[train]
    return out


def answerable_out_of_fold(rows: Rows, matrix: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """P(answerable) of every question from a question-level model fitted without its document's questions.

    `matrix`'s prior column is `prior_out_of_fold(rows, folds=folds)`, as the test questions see it.
    """
    from sklearn.model_selection import GroupKFold

    y = np.array(rows.answerable, dtype=float)
    oof = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(matrix, y, np.array(rows.groups)):
        model = fit_answerable(fold_matrix(rows, matrix, train, folds), y[train])
        oof[test] = model.predict(matrix[test], num_threads=1)
    return oof


def question_scores(rows: Rows, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per question: the best candidate's probability, and whether that candidate answers."""
    best, correct = [], []
    offset = 0
    for labels in rows.labels:
        p = probabilities[offset : offset + len(labels)]
        offset += len(labels)
        top = int(np.argmax(p)) if len(p) else -1
        best.append(float(p[top]) if len(p) else 0.0)
        correct.append(bool(len(p) and labels[top]))
    return np.array(best), np.array(correct)


def choose_threshold(best: np.ndarray, answerable: np.ndarray) -> float:
    """The highest threshold whose false abstention stays within MAX_FALSE_ABSTENTION (most refusals allowed)."""
    for t in np.round(np.arange(0.95, 0.0, -0.01), 2):
        if np.mean(best[answerable] < t) <= MAX_FALSE_ABSTENTION:
            return float(t)
    return 0.0


def calibration_rows(index: Path, loaded: dict[Path, PolicyQA] | None = None) -> Rows:
    """Candidate rows of the calibration blind sets as the shipped encoder and the shipped ranker read them."""
    from rag.rerank import LearnedRanker

    sets = Path(__file__).parent
    sources = [Source("calibration", sets / name, index) for name in CALIBRATION_BLIND_SETS]
    loaded = loaded or load_indexes(sources, None)
    retriever = loaded[index].retriever
    saved = retriever.ranker, retriever.precomputed
    retriever.ranker, retriever.precomputed = LearnedRanker.load(), {}
    try:
        return collect(sources, progress=False, loaded=loaded)
    finally:
        retriever.ranker, retriever.precomputed = saved


def answerability_of(decider: Decider, rows: Rows, probabilities: list[np.ndarray] | None = None) -> np.ndarray:
    """P(answerable) of every question of `rows` as `decider` reads it (from each question's sentence
    `probabilities` when the caller already has them)."""
    probabilities = probabilities or [decider.probabilities(f) for f in rows.features]
    return np.array([decider.answerability(p, f, t) for p, f, t in zip(probabilities, rows.features, rows.text)])


def calibrate(decider: Decider, rows: Rows) -> tuple[float, dict]:
    """The threshold chosen on questions the decision was not fitted on, read by the fitted models themselves,
    and its figures there."""
    probabilities = [decider.probabilities(f) for f in rows.features]  # the sentence model, read once
    scores = answerability_of(decider, rows, probabilities)
    answerable = np.array(rows.answerable)
    threshold = choose_threshold(scores, answerable)
    read = figures(rows, np.concatenate(probabilities), threshold, answerability=scores)
    return threshold, {
        "sets": list(CALIBRATION_BLIND_SETS),
        "answerable": int(answerable.sum()),
        "unanswerable": int((~answerable).sum()),
        **{key: read[key] for key in ("answerability_auc", "false_abstention", "abstention_recall")},
    }


def figures(
    rows: Rows, probabilities: np.ndarray, threshold: float, mask: np.ndarray | None = None,
    answerability: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Answerability AUC, top-1 answer sentence, abstention recall and false abstention on the selected questions.

    The question is answered when its `answerability` (default: its best sentence's probability) reaches `threshold`.
    """
    best, correct = question_scores(rows, probabilities)
    best = best if answerability is None else answerability
    answerable = np.array(rows.answerable)
    mask = np.ones(len(best), bool) if mask is None else mask
    b, a, c = best[mask], answerable[mask], correct[mask]
    answered = b >= threshold
    return {
        "questions": int(mask.sum()),
        "answerability_auc": round(_auc(b, a.astype(float)), 3) if 0 < a.sum() < len(a) else None,
        "top1_answer_sentence": round(float(c[a].mean()), 3) if a.any() else None,
        "answered_and_right": round(float((c & answered)[a].mean()), 3) if a.any() else None,
        "abstention_recall": round(float((~answered)[~a].mean()), 3) if (~a).any() else None,
        "false_abstention": round(float((~answered)[a].mean()), 3) if a.any() else None,
    }


def train(
    sources: list[Source],
    model_file: Path = MODEL_FILE,
    card_file: Path = CARD_FILE,
    rows: Rows | None = None,
    answerable_file: Path = ANSWERABLE_FILE,
    oof: np.ndarray | None = None,
    prior_file: Path = PRIOR_FILE,
    calibration: Rows | None = None,
) -> dict:
    """Fit, cross-validate and write the two models and their card; returns the card.

    `oof` is `out_of_fold(rows)` when the caller already has it (it is the slow part). With `calibration`
    (`calibration_rows`), the threshold is chosen on those questions as the fitted models read them; without,
    on the out-of-fold answerability of each policy set.
    """
    rows = rows or collect(sources)
    oof = out_of_fold(rows) if oof is None else oof
    best, _ = question_scores(rows, oof)
    prior = prior_out_of_fold(rows)
    matrix = question_matrix(rows, oof, prior)  # as the question model will see questions of unseen documents
    answerability = answerable_out_of_fold(rows, matrix)
    answerable = np.array(rows.answerable)
    sources_of = np.array(rows.source)
    # chosen on the policy-corpus questions (JSQuAD's left-out articles are far easier to refuse), on each
    # set: pooled, the easy `eval` and `holdout` sets let the colloquial `train` set's false abstention reach 0.07
    own = policy_questions(rows)
    policy_sets = [sources_of == s for s in sorted(set(sources_of[own]))]
    sentence_threshold = min(choose_threshold(best[m], answerable[m]) for m in policy_sets)
    out_of_fold_threshold = min(choose_threshold(answerability[m], answerable[m]) for m in policy_sets)
    booster = fit(np.vstack(rows.features), np.concatenate(rows.labels))
    answerable_model = fit_answerable(matrix, answerable.astype(float))
    fitted_prior = fit_prior(rows, np.arange(len(rows.groups)))
    threshold, calibrated = out_of_fold_threshold, None
    rule = f"highest with out-of-fold false abstention <= {MAX_FALSE_ABSTENTION} on each policy set"
    if calibration is not None:
        decider = Decider(booster, answerable_model, fitted_prior, 0.0, sentence_threshold)
        threshold, calibrated = calibrate(decider, calibration)
        rule = f"highest with false abstention <= {MAX_FALSE_ABSTENTION} on blind sets never fitted on"
    kinds = np.array(rows.kind)

    def cv(mask: np.ndarray | None = None) -> dict:
        return figures(rows, oof, threshold, mask, answerability)

    names = [s.name for s in sources]
    card = {
        "features": list(FEATURES),
        "question_features": list(QUESTION_FEATURES),
        "threshold": threshold,
        "sentence_threshold": sentence_threshold,
        "params": PARAMS,
        "rounds": ROUNDS,
        "question_params": QUESTION_PARAMS,
        "question_rounds": QUESTION_ROUNDS,
        "training_data": {n: [str(s.questions) for s in sources if s.name == n] for n in dict.fromkeys(names)},
        "candidates": int(sum(len(label) for label in rows.labels)),
        "positives": int(sum(label.sum() for label in rows.labels)),
        "threshold_rule": rule,
        "threshold_out_of_fold": out_of_fold_threshold,
        "calibration": calibrated,
        "prior": {
            "what": "character n-gram tf-idf logistic regression on the question's wording (rag.decide.QuestionPrior)",
            "ngrams": list(PRIOR_NGRAMS),
            "buckets": PRIOR_BUCKETS,
            "min_questions": PRIOR_MIN_QUESTIONS,
            "C": PRIOR_C,
            "fitted_on": "the policy-corpus questions of the training data",
            "questions": int(own.sum()),
            "answerability_auc_out_of_fold": {
                s: round(_auc(prior[sources_of == s], answerable[sources_of == s].astype(float)), 3)
                for s in sorted(set(sources_of[own]))
            },
        },
        "cross_validation": {
            "folds": FOLDS,
            "grouped_by": "document (JSQuAD: article)",
            "all": cv(),
            **{f"source:{s}": cv(sources_of == s) for s in sorted(set(rows.source))},
            **{f"kind:{k}": cv(kinds == k) for k in sorted(set(rows.kind))},
            "best_sentence_alone": {  # the decision before the question model, for comparison
                "policy_sets": figures(rows, oof, sentence_threshold, own),
                "all": figures(rows, oof, sentence_threshold),
            },
        },
    }
    model_file.parent.mkdir(parents=True, exist_ok=True)
    answerable_model.save_model(str(answerable_file))
    fitted_prior.save(prior_file)
    booster.save_model(str(model_file))
    card_file.write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return card


def cross_validated_eval(
    sources: list[Source],
    rows: Rows,
    card: dict,
    oof: np.ndarray | None = None,
    folds: int = FOLDS,
    query_vectors: dict | None = None,
    rankers: FoldRankers | None = None,
    loaded: dict[Path, PolicyQA] | None = None,
) -> dict[str, dict]:
    """`rag eval` figures of every source with each question answered by models fitted without its document.

    `oof` is `out_of_fold(rows, folds)` when the caller already has it; `query_vectors`, `rankers` and `loaded`
    as in `collect` (a split ask's own query still goes through the shipped encoder).
    """
    from sklearn.model_selection import GroupKFold

    from eval.evaluator import PolicyQASystem, evaluate

    X, y = np.vstack(rows.features), np.concatenate(rows.labels)
    qnum = np.concatenate(rows.question)
    groups = np.array(rows.groups)
    oof = out_of_fold(rows, folds) if oof is None else oof
    matrix = question_matrix(rows, oof, prior_out_of_fold(rows, folds=folds))
    answerable = np.array(rows.answerable, dtype=float)
    fold_of = np.zeros(len(groups), dtype=int)
    for fold, (_, test) in enumerate(GroupKFold(n_splits=folds).split(groups, groups=groups)):
        fold_of[test] = fold
    models = [
        Decider(
            fit(X[fold_of[qnum] != f], y[fold_of[qnum] != f]),
            fit_answerable(fold_matrix(rows, matrix, np.flatnonzero(fold_of != f), folds), answerable[fold_of != f]),
            fit_prior(rows, np.flatnonzero(fold_of != f)),
            card["threshold"],
            card["sentence_threshold"],
        )
        for f in range(folds)
    ]
    by_name: dict[str, tuple[list, list, PolicyQA]] = {}  # sources of one name (the blind sets) are one set
    number = 0
    loaded = loaded or load_indexes(sources, query_vectors)
    for source in sources:
        qa = loaded[source.index]
        questions = load_questions(source.questions)
        results, asked, _ = by_name.setdefault(source.name, ([], [], qa))
        for q in questions:
            qa._decider = models[fold_of[number]]
            if rankers is not None:
                qa.retriever.ranker = rankers.for_question(source, q.docs)
            number += 1
            results.append({"id": q.id, "question": q.question, "type": q.type, **PolicyQASystem(qa).run(q.question)})
        asked.extend(questions)
    return {name: evaluate(results, asked, 5, qa.similarity) for name, (results, asked, qa) in by_name.items()}


EVAL_COLUMNS = ("recall_at_k", "mrr_at_10", "keyword_accuracy", "cited_support", "abstain_recall", "false_abstain_rate")


def eval_table(reports: dict[str, dict]) -> str:
    """The cross-validated `rag eval` figures of each source as a Markdown table."""
    lines = ["| set | " + " | ".join(EVAL_COLUMNS) + " |", "|---" * (len(EVAL_COLUMNS) + 1) + "|"]
    for name, report in reports.items():
        o = report["overall"]
        cells = [f"{o[c]:.3f}" if o.get(c) is not None else "–" for c in EVAL_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def default_sources(outside: Path, work: Path, index: Path) -> list[Source]:
    """Our four question sets on the bundled corpus's index, plus JSQuAD imported and indexed under `work`."""
    from eval.squad import import_squad
    from ingest.pipeline import ingest

    squad = work / "jsquad"
    if not (squad / "questions.jsonl").exists():
        import_squad(outside / "jsquad-v1.3_valid-v1.3.json", squad, per_article=SQUAD_PER_ARTICLE)
    ingest([squad / "corpus"], squad / "index")  # incremental: brings an index built by an older version up to date
    ingest([Path("corpus")], index)
    sets = Path(__file__).parent
    return [
        Source("eval", sets / "questions.jsonl", index),
        Source("holdout", sets / "questions_holdout.jsonl", index),
        Source("train", sets / "questions_train.jsonl", index),
        Source("train2", sets / "questions_train2.jsonl", index),
        Source("dev", sets / "questions_dev.jsonl", index),
        *(Source("blind", sets / name, index) for name in RETIRED_BLIND_SETS),
        Source("jsquad", squad / "questions.jsonl", squad / "index", keywords_label=False),
    ]
