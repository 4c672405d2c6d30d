"""The grounding check's measurement data: JNLI pairs and our answers against right and wrong evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.ground_check import answer_pairs, jnli_pairs
from tests.conftest import QUESTIONS

JNLI = Path(__file__).resolve().parents[2].parent / "shared" / "outside" / "jnli-v1.3_valid-v1.3.json"


@pytest.mark.skipif(not JNLI.exists(), reason="shared/outside not beside the checkout")
def test_jnli_pairs_are_hypothesis_against_premise():
    pairs = jnli_pairs(JNLI)
    assert len(pairs) == 2434 and sum(p.supported for p in pairs) == 349
    assert all(p.group.startswith("jnli:") for p in pairs)


def test_each_reference_answer_meets_its_evidence_and_another_of_its_document():
    pairs = answer_pairs([QUESTIONS])
    right = [p for p in pairs if p.supported]
    wrong = [p for p in pairs if not p.supported]
    assert len(right) >= 100 and len(wrong) >= len(right) - 5
    assert all(p.group.startswith("ours:") for p in pairs)
    assert {(p.sentence, p.passage) for p in right}.isdisjoint({(p.sentence, p.passage) for p in wrong})
