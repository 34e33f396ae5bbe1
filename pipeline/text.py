"""Text as evidence: note sentences that quotes are cut from, and the canon quotes compare in.

Every sentence returned here occurs verbatim in the notes (whitespace-normalised), which is
what quoting and its check rely on.
"""

from __future__ import annotations

import re
import threading
from difflib import SequenceMatcher

MIN_QUOTE_CHARS = 8  # a shorter quote is too short to be evidence
_QUOTE_TABLE = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


_WORD = re.compile(r"\S+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")
ALIGN_MIN_RATIO = 0.8  # token similarity from which a near-quote is taken as that span


def _token(word: str) -> str:
    return re.sub(r"^\W+|\W+$", "", canon(word).casefold())


def _spans(text: str) -> list[tuple[str, int, int]]:
    return [(t, m.start(), m.end()) for m in _WORD.finditer(text) if (t := _token(m.group()))]


def align_quote(quote: str, body: str) -> str | None:
    """The exact span of ``body`` that ``quote`` comes from, or None.

    A model's near-quote (other quote marks, whitespace or case, a dropped or changed word,
    an ellipsis over a gap) is matched word by word against windows of the notes; the best
    window at ALIGN_MIN_RATIO or above wins, and its original text is returned, so what the
    user sees is always verbatim from the notes.
    """
    parts = [p for p in _ELLIPSIS.split(quote.strip(" \"'“”‘’")) if p.strip()]
    if not parts:
        return None
    words = _spans(body)
    toks = [w[0] for w in words]
    start_at, first, last = 0, None, None
    for part in parts:
        q = [t for t in (_token(w) for w in part.split()) if t]
        if not q:
            continue
        hit = _best_window(q, toks, start_at)
        if hit is None:
            return None
        a, b = hit
        first = a if first is None else first
        last, start_at = b, b
    if first is None or last is None:
        return None
    return body[words[first][1]:words[last - 1][2]]


def _best_window(q: list[str], toks: list[str], start: int) -> tuple[int, int] | None:
    n = len(q)
    for i in range(start, len(toks) - n + 1):  # exact first: cheap and the common case
        if toks[i:i + n] == q:
            return i, i + n
    anchors = {q[0], q[min(1, n - 1)], q[-1]}
    best, where = 0.0, None
    for i in range(start, len(toks)):
        if toks[i] not in anchors:
            continue
        for lo in (i, i - 1):
            for size in range(max(1, n - 2), n + 3):
                if lo < start or lo + size > len(toks):
                    continue
                ratio = SequenceMatcher(None, q, toks[lo:lo + size], autojunk=False).ratio()
                if ratio > best:
                    best, where = ratio, (lo, lo + size)
    return where if best >= ALIGN_MIN_RATIO else None


def canon(text: str) -> str:
    """Whitespace-normalised, typographic quotes and dashes folded, so that a model's curly
    quote still matches the notes' straight one."""
    return normalize_ws(text.translate(_QUOTE_TABLE)).strip()


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|#+)\s+")


_LOCAL = threading.local()


def _segmenter():  # noqa: ANN202 - pysbd is untyped
    """One pysbd segmenter per thread: ``Segmenter.segment`` keeps the text it is working on
    in ``self.original_text``, so two threads sharing one (a batch retrieves two notes at
    once) cut each other's sentences at the wrong offsets."""
    seg = getattr(_LOCAL, "segmenter", None)
    if seg is None:
        import pysbd

        seg = _LOCAL.segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return seg


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


CLAUSE_LEN = 220  # a run-on sentence longer than this is cut at its clause breaks
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+|\s+(?=[—–-]\s)|(?<=[—–])\s+")


def _clauses(part: str, limit: int, max_len: int) -> list[str]:
    """A run-on sentence as pieces of at most ``limit`` characters, cut after a comma,
    semicolon, colon or dash where it can be (a quote should end where a thought does), and
    at a space only when one clause alone is longer than ``max_len``."""
    if len(part) <= limit:
        return [part]
    breaks = [m.end() for m in _CLAUSE_BREAK.finditer(part)]
    pieces: list[str] = []
    start = 0
    while len(part) - start > limit:
        cut = max((b for b in breaks if start < b <= start + limit), default=None)
        if cut is None or cut - start < limit // 3:
            nxt = min((b for b in breaks if b > start + limit), default=len(part))
            if nxt - start <= max_len:
                cut = nxt
            else:
                space = part.rfind(" ", start, start + max_len)
                cut = space if space > start + max_len // 2 else start + max_len
        pieces.append(part[start:cut].strip())
        start = cut
    pieces.append(part[start:].strip())
    return [p for p in pieces if p]


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
            out.extend(_clauses(part, min(CLAUSE_LEN, max_len), max_len))
    return out
