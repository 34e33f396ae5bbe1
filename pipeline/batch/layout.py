"""The batch's output folder: what it holds and how a note's reflection files are named.

Everything debrief writes for a notes folder lives here (``NOTES_DIR/.debrief`` or
``--out``); other commands ask this module, never guess the names.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

NOTE_SUFFIXES = (".md", ".txt")
DEFAULT_OUT = ".debrief"
STATE_FILE = "state.sqlite3"
LOCK_FILE = "batch.lock"
PID_FILE = "batch.pid"
DIGEST_FILE = "digest.md"
RESERVED_STEMS = {"digest"}  # a top-level note called digest.md must not overwrite the digest


def output_names(rels: list[str]) -> dict[str, tuple[str, str]]:
    """Note path -> (markdown, json) paths relative to the output folder.

    ``sub/2026-01-05-acme.md`` -> ``sub/2026-01-05-acme.md`` / ``.json``. When two notes
    would share a name (``acme.md`` and ``acme.txt``, or a top-level ``digest.md``) they keep
    their suffix (``acme.txt.md``); anything still clashing gets a hash of its path. Names
    are compared case-folded, for case-insensitive file systems. Every path is made of the
    note's own path components, so it cannot leave the output folder.
    """

    def base(rel: str, full: bool) -> str:
        p = PurePosixPath(rel)
        return str(p.parent / (p.name if full else p.stem))

    bases = {r: base(r, False) for r in rels}
    seen: dict[str, int] = {}
    for b in bases.values():
        seen[b.casefold()] = seen.get(b.casefold(), 0) + 1
    for r, b in bases.items():
        if seen[b.casefold()] > 1 or b.casefold() in RESERVED_STEMS:
            bases[r] = base(r, True)
    seen = {}
    for b in bases.values():
        seen[b.casefold()] = seen.get(b.casefold(), 0) + 1
    for r, b in bases.items():
        if seen[b.casefold()] > 1 or b.casefold() in RESERVED_STEMS:
            bases[r] = f"{base(r, True)}-{hashlib.sha256(r.encode()).hexdigest()[:8]}"
    return {r: (f"{b}.md", f"{b}.json") for r, b in bases.items()}


def batch_files(note_rels: list[str]) -> set[str]:
    """Every file name the batch itself writes in its output folder, for these notes."""
    names = {DIGEST_FILE, STATE_FILE, LOCK_FILE, PID_FILE}
    for md, js in output_names(note_rels).values():
        names |= {md, js}
    return names
