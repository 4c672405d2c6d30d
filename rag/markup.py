"""Document and user text as inert Markdown for the app: shown literally, never as HTML or links."""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them
# turns `<script>`, `[link](url)`, `**bold**`, `$math$` and Streamlit's `:color[...]` into plain text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&\"'=^])")
_LINE_BREAK = "  \n"  # Markdown hard break: keep the passage's own lines


def _escape_line(line: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", line)


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders exactly as written, line breaks kept."""
    return _LINE_BREAK.join(_escape_line(line) for line in text.split("\n"))


def highlighted_markdown(text: str, start: int, end: int, color: str = "orange") -> str:
    """`text` escaped, with `text[start:end]` (the evidence) on a coloured background."""
    evidence = text[start:end]
    if not evidence.strip():
        return escape_markdown(text)
    # A Streamlit colour directive cannot span a line break, so each evidence line gets its own.
    marked = _LINE_BREAK.join(
        f":{color}-background[{_escape_line(line)}]" if line.strip() else line for line in evidence.split("\n")
    )
    return escape_markdown(text[:start]) + marked + escape_markdown(text[end:])
