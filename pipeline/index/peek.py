"""The embedded index's version, read without starting Chroma."""

from __future__ import annotations

import sqlite3

from pipeline.home import chroma_dir


def peek_fingerprint(collection: str) -> str | None:
    """The embedded index's fingerprint, read straight from Chroma's SQLite file, read-only.

    Importing chromadb alone takes about a second, which a no-op nightly run must not pay.
    This reads the same value ``AdviceIndex.fingerprint()`` returns (the collection
    metadata), and gives None whenever the file is missing or not laid out as expected; the
    caller then opens the index the normal way. tests/test_batch.py checks the two agree.
    """
    db = chroma_dir() / "chroma.sqlite3"
    if not db.is_file():
        return None
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
