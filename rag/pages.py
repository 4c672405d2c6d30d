"""The PDF page a citation points to: its label (「p. 12」) for cards and the CLI."""

from __future__ import annotations


def page_label(first: int | None, last: int | None) -> str:
    """「p. 12」 or 「pp. 12–13」; empty for a document without pages."""
    if first is None:
        return ""
    if last is None or last == first:
        return f"p. {first}"
    return f"pp. {first}–{last}"
