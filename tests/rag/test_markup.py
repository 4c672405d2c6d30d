"""Document text rendered through Markdown stays literal: no HTML, links, emphasis or directives."""

from __future__ import annotations

import html

import pytest
from markdown_it import MarkdownIt

from rag.markup import escape_markdown, highlighted_markdown

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[外部リンク](javascript:alert(1)) と https://example.com",
    "**太字** _斜体_ `code` ~~取消~~",
    "# 見出し\n- 箇条書き\n1. 番号",
    ":red[色指定] と :orange-background[背景] と $x^2$",
    "AI\\ 法 & 条文 &amp; \"引用\" 'single'",
    "| 表 | 列 |\n|---|---|",
]


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_the_same_characters_with_no_markup(text):
    out = render(escape_markdown(text))
    inner = out.removeprefix("<p>").removesuffix("</p>\n").replace("<br />\n", "\n")
    assert "<" not in inner.replace("&lt;", "")  # no element other than the paragraph
    assert html.unescape(inner) == text


def test_highlight_marks_exactly_the_evidence_on_each_of_its_lines():
    text = "前の文。<b>根拠の一行目\n根拠の二行目</b>。後の文。"
    start = text.index("<b>")
    end = text.index("</b>") + 4
    md = highlighted_markdown(text, start, end)
    assert md.count(":orange-background[") == 2
    assert ":orange-background[\\<b\\>根拠の一行目]" in md
    assert ":orange-background[根拠の二行目\\</b\\>]" in md
    assert md.startswith("前の文。") and md.endswith("。後の文。")


def test_blank_evidence_is_not_highlighted():
    assert highlighted_markdown("本文", 0, 0) == escape_markdown("本文")
