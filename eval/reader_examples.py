"""JSQuAD (JGLUE, Kurihara et al., LREC 2022, CC BY-SA 4.0) as reader examples: which sentence answers the question.

Each question becomes a group: its paragraph split into sentences, the one holding the answer span
marked. Articles are assigned whole to training or held-out, so no held-out question shares a
paragraph (or its wording) with training.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[。！？])")


@dataclass(frozen=True)
class Group:
    """One question and the sentences of its paragraph; `answer` indexes the sentence holding the answer."""

    qid: str
    title: str
    question: str
    sentences: tuple[str, ...]
    answer: int


def split_sentences(text: str) -> list[tuple[int, str]]:
    """(start offset, sentence) for each 。/！/？-terminated sentence with some content."""
    out, pos = [], 0
    for part in _SENTENCE_END.split(text):
        if part.strip():
            out.append((pos, part))
        pos += len(part)
    return out


def load_groups(path: str | Path, min_sentences: int = 2) -> list[Group]:
    """Every answerable question whose paragraph has at least `min_sentences` sentences."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    groups = []
    for article in data:
        for para in article["paragraphs"]:
            context = para["context"]
            head, sep, body = context.partition(" [SEP] ")
            offset = len(head) + len(sep) if sep else 0
            title = head if sep else article["title"]
            sentences = split_sentences(body if sep else context)
            if len(sentences) < min_sentences:
                continue
            for qa in para["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                start = qa["answers"][0]["answer_start"] - offset
                hit = [i for i, (s, text) in enumerate(sentences) if s <= start < s + len(text)]
                if hit:
                    texts = tuple(text.strip() for _, text in sentences)
                    groups.append(Group(qa["id"], title, qa["question"], texts, hit[0]))
    return groups


def is_held_out(title: str, fraction: float = 0.2) -> bool:
    """A stable article-level split: the same article is always on the same side."""
    digest = hashlib.sha256(title.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def split_by_article(groups: list[Group], fraction: float = 0.2) -> tuple[list[Group], list[Group]]:
    """(training, held-out) groups, whole articles on each side."""
    train = [g for g in groups if not is_held_out(g.title, fraction)]
    held = [g for g in groups if is_held_out(g.title, fraction)]
    return train, held
