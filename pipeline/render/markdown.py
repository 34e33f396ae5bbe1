"""Markdown building blocks every view shares."""

from __future__ import annotations


def cell(text: object) -> str:
    """One table cell or list item: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
