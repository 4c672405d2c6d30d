"""Synonym groups from the Sudachi dictionary, for questions worded differently from the documents.

A paraphrased question names its topic in other words (土台 for 基盤, 前もって
for あらかじめ). SudachiDict tags each word with the ids of the synonym groups
it belongs to, so two words that share an id are synonyms. The dictionary
ships on PyPI (sudachidict-core), so this works offline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import lru_cache


class SynonymGroups:
    """Synonym-group ids of single words. Safe to share across threads (one Sudachi tokenizer per thread)."""

    name = "sudachidict-core/synonym-groups"

    def __init__(self) -> None:
        from sudachipy import Dictionary

        self._dictionary = Dictionary(dict="core")
        self._local = threading.local()
        self.groups = lru_cache(maxsize=65536)(self._groups)

    def _tokenizer(self):
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            from sudachipy import SplitMode

            tokenizer = self._local.tokenizer = self._dictionary.tokenizer(mode=SplitMode.C)
        return tokenizer

    def _groups(self, word: str) -> frozenset[int]:
        """Group ids of `word` when Sudachi reads it as one word; none for phrases or unknown words."""
        morphemes = self._tokenizer().tokenize(word)
        return frozenset(morphemes[0].synonym_group_ids()) if len(morphemes) == 1 else frozenset()

    def groups_of(self, words: Iterable[str]) -> frozenset[int]:
        """All group ids of `words` together."""
        return frozenset(group for word in words for group in self.groups(word))


@lru_cache(maxsize=1)
def default_synonyms() -> SynonymGroups:
    """One shared instance per process."""
    return SynonymGroups()
