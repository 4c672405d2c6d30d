"""Rendering a cited PDF page with the evidence marked, and page labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.pages import HIGHLIGHT, evidence_chars, page_label, render_evidence
from tests.documents import write_policy_pdf

EVIDENCE = "内閣府に生成AI安全評価センターを2026年4月に設置し、評価手法の開発と国際連携の窓口を担わせる。"


@pytest.fixture(scope="module")
def policy_pdf(tmp_path_factory) -> Path:
    return write_policy_pdf(tmp_path_factory.mktemp("pages") / "policy.pdf")


def test_page_labels():
    assert page_label(None, None) == ""
    assert page_label(3, 3) == "p. 3"
    assert page_label(1, 2) == "pp. 1–2"


def test_evidence_is_found_across_wraps_and_line_numbers():
    page = "内閣府に生成AI安全評価センターを2026年4月に設置し、評価手法の開発と国\t3\r\n際連携の窓口を担わせる。\t4"
    found = "".join(page[i] for i in evidence_chars(page, EVIDENCE))
    assert found == EVIDENCE  # the line number 3 and the break are skipped, nothing else is


def test_cited_page_is_rendered_with_the_evidence_marked(policy_pdf: Path):
    rendered = render_evidence(policy_pdf, 2, EVIDENCE, width=600)
    assert rendered.marked == len(EVIDENCE)
    assert rendered.image.size[0] == 600
    pixels = np.asarray(rendered.image).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    tinted = int(((r > 240) & (g > 200) & (g < 240) & (b < 160)).sum())
    assert tinted > 1000, "no highlight drawn"
    elsewhere = render_evidence(policy_pdf, 3, EVIDENCE, width=600)
    assert elsewhere.marked < len(EVIDENCE) // 2  # the evidence is not on page 3
    assert HIGHLIGHT[3] < 255  # translucent: the text stays readable under it


def test_a_page_out_of_range_is_a_clear_error(policy_pdf: Path):
    with pytest.raises(ValueError, match="has 3 pages"):
        render_evidence(policy_pdf, 9, EVIDENCE)
