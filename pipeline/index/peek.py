"""The embedded index's version, read without starting Chroma."""

from __future__ import annotations

import sqlite3

from pipeline.errors import DebriefError
from pipeline.home import chroma_dir
from pipeline.index.store import resolve_embedded


def peek_fingerprint(collection: str) -> str | None:
    """The embedded index's fingerprint, read from its pointer and completeness marker (or,
    for the layout before builds, straight from Chroma's SQLite file, read-only).

    Importing chromadb alone takes about a second, which a no-op nightly run must not pay.
    This is the value ``AdviceIndex.fingerprint()`` returns, and None whenever there is no
    complete index or anything is not laid out as expected; the caller then opens the index
    the normal way (which builds or repairs it). tests/test_batch.py checks the two agree.
    """
    try:
        cur = resolve_embedded(chroma_dir(), collection)
    except DebriefError:
        return None
    if cur.status == "complete":
        return cur.fingerprint or None
    if cur.status != "legacy":
        return None
    db = chroma_dir() / "chroma.sqlite3"
    try:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            names = [r[0] for r in con.execute(
                "SELECT name FROM collections WHERE name IN (?, ?)",
                (collection, collection + "-cues"))]
            rows = con.execute(
                "SELECT m.str_value FROM collection_metadata m JOIN collections c "
                "ON c.id = m.collection_id WHERE c.name = ? AND m.key = 'fingerprint'",
                (collection,)).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if sorted(names) != sorted([collection, collection + "-cues"]) or len(rows) != 1:
        return None
    return str(rows[0][0]) if rows[0][0] else None
