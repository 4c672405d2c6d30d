"""SQuAD-format data (JSQuAD and the like) → a corpus directory plus a question file in our schema.

Each article becomes one document (its title as the heading, one paragraph per
section), each question an answerable question whose evidence is its answer
span. The questions of some articles are kept while those articles are left
out of the corpus: they become unanswerable questions that still share the
corpus's vocabulary, which is what makes abstention hard. `rag eval` then runs
on the result like on our own sets.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

_SEP = re.compile(r"^.*?\[SEP\]\s*")  # JSQuAD contexts begin with "<title> [SEP] "
_UNSAFE = re.compile(r"[^0-9A-Za-z\u3040-\u30ff\u4e00-\u9fff_-]+")


class SquadFormatError(ValueError):
    """The input is not SQuAD-format JSON; the message says what is missing."""


@dataclass(frozen=True)
class SquadImport:
    corpus: Path
    questions: Path
    documents: int
    answerable: int
    unanswerable: int


def file_name(title: str) -> str:
    """A stable, file-system-safe document name for an article title."""
    digest = hashlib.sha1(title.encode("utf-8")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', title)[:40]}_{digest}.txt"


def _sentence_at(context: str, start: int, answer: str) -> str:
    """The sentence of `context` holding the answer span (the evidence a reader must find)."""
    if not 0 <= start < len(context) or not context.startswith(answer.strip(), start):
        start = context.find(answer.strip())
    if start < 0:
        return answer.strip()
    begin = max(context.rfind("。", 0, start) + 1, context.rfind("\n", 0, start) + 1)
    end = context.find("。", start + len(answer.strip()))
    return context[begin : end + 1 if end >= 0 else len(context)].strip()


def _articles(path: Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SquadFormatError(f"{path}: cannot read SQuAD JSON ({exc})") from exc
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list) or not all(isinstance(a, dict) and "paragraphs" in a for a in articles):
        raise SquadFormatError(f"{path}: expected {{'data': [{{'title', 'paragraphs': [...]}}]}}")
    return articles


def import_squad(
    source: Path,
    out: Path,
    unanswerable_articles: float = 0.2,
    per_article: int = 0,
    seed: int = 0,
) -> SquadImport:
    """Write `out/corpus/*.txt` and `out/questions.jsonl`; deterministic for a given seed.

    `unanswerable_articles` is the share of articles left out of the corpus whose
    questions become unanswerable; `per_article` caps questions per article (0: all).
    """
    articles = _articles(source)
    rng = random.Random(seed)
    order = list(range(len(articles)))
    rng.shuffle(order)
    n_out = round(len(articles) * unanswerable_articles)
    left_out = set(order[:n_out])
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    counts = {"documents": 0, "answerable": 0, "unanswerable": 0}
    for index, article in enumerate(articles):
        title = str(article.get("title", f"article {index}"))
        name = file_name(title)
        paragraphs, questions = [], []
        for paragraph in article["paragraphs"]:
            context = _SEP.sub("", paragraph.get("context", "")).strip()
            paragraphs.append(context)
            offset = len(paragraph.get("context", "")) - len(context)
            for qa in paragraph.get("qas", []):
                answers = [a for a in qa.get("answers", []) if a.get("text", "").strip()]
                if answers:
                    start = int(answers[0].get("answer_start", -1)) - offset
                    questions.append((qa, answers[0]["text"].strip(), _sentence_at(context, start, answers[0]["text"])))
        if per_article:
            questions = rng.sample(questions, min(per_article, len(questions)))
        answerable = index not in left_out
        if answerable:
            body = "\n\n".join(p for p in paragraphs if p)
            (corpus / name).write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
            counts["documents"] += 1
        for qa, answer, sentence in questions:
            row = {"id": f"sq-{qa.get('id', len(rows))}", "question": qa["question"].strip(), "answerable": answerable}
            if answerable:
                row |= {"doc": name, "evidence": [sentence], "answer": answer, "keywords": [answer]}
                row |= {"type": "factoid", "article": title}
            else:
                row |= {"doc": None, "evidence": [], "keywords": [], "type": "unanswerable", "article": title}
            counts["answerable" if answerable else "unanswerable"] += 1
            rows.append(row)
    questions_path = out / "questions.jsonl"
    questions_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return SquadImport(corpus, questions_path, counts["documents"], counts["answerable"], counts["unanswerable"])
