"""Text as evidence: note sentences that quotes are cut from, and the canon quotes compare in.

Every sentence returned here occurs verbatim in the notes (whitespace-normalised), which is
what quoting and its check rely on.
"""

from __future__ import annotations

import re
from functools import cache

MIN_QUOTE_CHARS = 8  # a shorter quote is too short to be evidence
_QUOTE_TABLE = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def canon(text: str) -> str:
    """Whitespace-normalised, typographic quotes and dashes folded, so that a model's curly
    quote still matches the notes' straight one."""
    return normalize_ws(text.translate(_QUOTE_TABLE)).strip()


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|#+)\s+")


@cache
def _segmenter():  # noqa: ANN202 - pysbd is untyped
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def units(body: str) -> list[str]:
    """Paragraphs and list items, with soft-wrapped continuation lines joined back on."""
    units: list[str] = []
    # a comment separates units: text on both sides of an inline one must not be joined
    # into a "sentence" that does not occur in the notes
    body = _COMMENT.sub("\n\n", body)
    for line in body.split("\n"):
        if not line.strip() or set(line.strip()) <= set("-=*_"):
            units.append("")
        elif (units and units[-1] and not _BULLET.match(line) and not units[-1].startswith("#")
              and not line.lstrip().startswith(("|", ">"))):
            units[-1] = f"{units[-1]} {line.strip()}"
        else:
            units.append(line.strip())
    return [u for u in units if u]


def sentences(body: str, *, max_len: int = 400) -> list[str]:
    """Split notes into quotable units: one per line item, then per sentence.

    Every returned string occurs verbatim in the body (whitespace-normalised), which is what
    the quote check relies on. Markdown bullets and heading marks are stripped off the front.
    """
    out: list[str] = []
    for line in units(body):
        line = _BULLET.sub("", line).strip()
        if len(line) < 3 or set(line) <= set("-=*_#|: "):
            continue
        spans: list[tuple[int, int]]
        if len(line) > 5000:
            spans = [(i, min(i + max_len, len(line))) for i in range(0, len(line), max_len)]
        else:
            try:
                # offsets, not strings: pysbd's strings can differ from the input ("<! --")
                spans = [(sp.start, sp.end) for sp in _segmenter().segment(line)]
            except Exception:  # pysbd has regex edge cases; fall back to the whole line
                spans = []
            spans = [(a, b) for a, b in spans if line[a:b].strip()] or [(0, len(line))]
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            # "Unpaid." or "Gut: no." alone says little; keep it with its neighbour, cutting the
            # line by offsets so the joined text is exactly what the notes say
            if merged and (len(line[a:b].split()) < 3
                           or len(line[merged[-1][0]:merged[-1][1]].split()) < 3):
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        for a, b in merged:
            part = normalize_ws(line[a:b]).strip()
            if len(part) < 3:
                continue
            while len(part) > max_len:
                cut = part.rfind(" ", 0, max_len)
                cut = cut if cut > max_len // 2 else max_len
                out.append(part[:cut].strip())
                part = part[cut:].strip()
            if part:
                out.append(part)
    return out
