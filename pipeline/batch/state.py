"""The batch state: one SQLite row per note, saying what was done and with what.

Migrations are a list of functions, applied in order and counted in ``user_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError


def _migration_1(con: sqlite3.Connection) -> None:
    con.execute("""
        CREATE TABLE notes (
            path TEXT PRIMARY KEY,          -- relative to the notes folder, POSIX
            sha256 TEXT,                    -- of the note's bytes
            prompt_version TEXT,
            engine TEXT,
            model TEXT,
            index_fingerprint TEXT,
            out_md TEXT,                    -- relative to the output folder
            out_json TEXT,
            decision TEXT,
            confidence REAL,
            company TEXT,
            date TEXT,                      -- ISO date: front matter, else file modified
            date_from TEXT,                 -- 'notes' or 'file'
            next_step TEXT,
            status TEXT NOT NULL,           -- 'ok' or 'failed'
            error TEXT,
            seconds REAL,
            finished_at TEXT
        )""")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1]
COLUMNS = ("path", "sha256", "prompt_version", "engine", "model", "index_fingerprint",
           "out_md", "out_json", "decision", "confidence", "company", "date", "date_from",
           "next_step", "status", "error", "seconds", "finished_at")


class State:
    """One row per note. Opened read-only (and never created) for --dry-run."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.con: sqlite3.Connection | None = None
        try:
            if readonly:
                if path.is_file():
                    self.con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10)
            else:
                self.con = sqlite3.connect(path, timeout=10)
            if self.con is not None:
                self.con.row_factory = sqlite3.Row
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DebriefError(f"the batch state {path} cannot be read ({exc}); delete it to "
                               "start over (every note is then reflected on again).") from None

    def _migrate(self) -> None:
        assert self.con is not None
        version = self.con.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise DebriefError(f"the batch state {self.path} was written by a newer debrief "
                               f"(format {version}); upgrade, or delete it to start over.")
        if self.readonly:
            if version < len(MIGRATIONS):
                self.con.close()
                self.con = None  # an old format reads as empty: everything would be due
            return
        for i in range(version, len(MIGRATIONS)):
            with self.con:
                MIGRATIONS[i](self.con)
                self.con.execute(f"PRAGMA user_version = {i + 1}")

    def rows(self) -> dict[str, sqlite3.Row]:
        if self.con is None:
            return {}
        return {r["path"]: r for r in self.con.execute("SELECT * FROM notes")}

    def save(self, **values: Any) -> None:
        """Insert or replace one note's row and commit it."""
        assert self.con is not None and not self.readonly
        row = {c: values.get(c) for c in COLUMNS}
        with self.con:
            self.con.execute(
                f"INSERT OR REPLACE INTO notes ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in COLUMNS)})", [row[c] for c in COLUMNS])

    def prune(self, keep: set[str]) -> int:
        """Forget notes that are no longer in the folder (their old outputs stay)."""
        assert self.con is not None
        gone = [p for p in self.rows() if p not in keep]
        with self.con:
            self.con.executemany("DELETE FROM notes WHERE path = ?", [(p,) for p in gone])
        return len(gone)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
