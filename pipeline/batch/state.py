"""The batch state: one SQLite row per note, saying what was done and with what.

Migrations are a list of functions, applied in order and counted in ``user_version``.

A row's output columns (``out_md`` ... ``ok_at``) describe the note's last good reflection
and the hashes of the files written for it. A failed redo keeps them, so the digest and
``compare`` go on showing that reflection, marked stale, beside the failure.

A fault of the file itself (a full disk, a read-only or damaged file) is a StorageError
naming the file and what to do: no note can be recorded, so the batch stops. Anything else
raised while saving one note's row is that note's own failure.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError
from pipeline.files import StorageError
from pipeline.notes import clean_text


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
            date TEXT,                      -- ISO date: front matter, file name, else modified
            date_from TEXT,                 -- 'notes', 'name' or 'file'
            next_step TEXT,
            status TEXT NOT NULL,           -- 'ok' or 'failed'
            error TEXT,
            seconds REAL,
            finished_at TEXT
        )""")


def _migration_2(con: sqlite3.Connection) -> None:
    """What we wrote, so that a file we did not write is never written over, and when the
    last good reflection was made, so a failed redo can keep showing it."""
    con.execute("ALTER TABLE notes ADD COLUMN md_sha256 TEXT")    # of out_md as written
    con.execute("ALTER TABLE notes ADD COLUMN json_sha256 TEXT")  # of out_json as written
    con.execute("ALTER TABLE notes ADD COLUMN ok_at TEXT")        # when out_* were made


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2]
COLUMNS = ("path", "sha256", "prompt_version", "engine", "model", "index_fingerprint",
           "out_md", "out_json", "decision", "confidence", "company", "date", "date_from",
           "next_step", "status", "error", "seconds", "finished_at",
           "md_sha256", "json_sha256", "ok_at")
# the last good reflection: kept as it was when a redo fails
GOOD_COLUMNS = ("out_md", "out_json", "md_sha256", "json_sha256", "decision", "confidence",
                "next_step", "ok_at")
_DELETE = ("delete it to start over (every note is then reflected on again; your notes are "
           "not touched)")


def storage_fault(exc: sqlite3.Error, path: Path) -> StorageError | None:
    """The user's version of an SQLite error about the file itself, or None when the error
    is about what was being written (then it is one note's failure)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = " ".join(str(exc).split())
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        what = "the disk is full; free some space (or pick another --out) and run again"
    elif name.startswith("SQLITE_READONLY") or "readonly database" in text:
        what = ("it cannot be written; make it and its folder writable for you "
                "(or pick another --out) and run again")
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text \
            or "not a database" in text:
        what = f"it is damaged; {_DELETE}"
    elif name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        what = "the disk failed to read or write it; check the disk and run again"
    elif name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM")) or "unable to open" in text:
        what = "it cannot be opened; check that you may read and write it and its folder"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        what = "another program holds it locked; close that program and run again"
    else:
        return None
    return StorageError(f"the batch state {path} failed ({text}): {what}.")


def expected_columns(version: int) -> list[str]:
    """The notes table's columns at a format version: the migrations, run in memory."""
    con = sqlite3.connect(":memory:")
    try:
        for migrate in MIGRATIONS[:version]:
            migrate(con)
        return [r[1] for r in con.execute("PRAGMA table_info(notes)")]
    finally:
        con.close()


def schema_problems(con: sqlite3.Connection) -> tuple[int, list[str]]:
    """(format version, what is wrong with the tables and columns for that version)."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        return version, [f"format {version} is newer than this debrief knows "
                         f"({len(MIGRATIONS)}); upgrade debrief"]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0:
        return 0, [] if "notes" not in tables else ["it has a notes table but no format number"]
    if "notes" not in tables:
        return version, ["it has no notes table"]
    have = {r[1] for r in con.execute("PRAGMA table_info(notes)")}
    missing = [c for c in expected_columns(version) if c not in have]
    return version, ([f"the notes table lacks {', '.join(missing)}"] if missing else [])


def _clean(value: Any) -> Any:
    # a value that cannot be encoded must not cost the note (or the batch) its row
    return clean_text(value) if isinstance(value, str) else value


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
        except sqlite3.Error as exc:
            self.close()
            fault = storage_fault(exc, path)
            if fault is not None:
                raise fault from None
            raise StorageError(f"the batch state {path} cannot be read ({exc}); "
                               f"{_DELETE}.") from None
        except BaseException:
            self.close()
            raise

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
        else:
            for i in range(version, len(MIGRATIONS)):
                with self.con:
                    MIGRATIONS[i](self.con)
                    self.con.execute(f"PRAGMA user_version = {i + 1}")
            # a write that changes nothing: a read-only or full state fails here, at the
            # start, rather than after the first note's model call
            with self.con:
                self.con.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        # a damaged page is found now, before any note's work, not at its first save
        check = [r[0] for r in self.con.execute("PRAGMA quick_check(3)")]
        if check != ["ok"]:
            raise StorageError(f"the batch state {self.path} is damaged "
                               f"({'; '.join(check)}); {_DELETE}.")
        _version, problems = schema_problems(self.con)
        if problems:
            raise StorageError(f"the batch state {self.path} is not laid out as expected "
                               f"({'; '.join(problems)}); {_DELETE}.")

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """SQLite errors about the file become a StorageError; others pass unchanged."""
        try:
            yield
        except sqlite3.Error as exc:
            fault = storage_fault(exc, self.path)
            if fault is not None:
                raise fault from None
            raise

    def rows(self) -> dict[str, sqlite3.Row]:
        if self.con is None:
            return {}
        with self._faults():
            return {r["path"]: r for r in self.con.execute("SELECT * FROM notes")}

    def row(self, path: str) -> sqlite3.Row | None:
        if self.con is None:
            return None
        with self._faults():
            return self.con.execute("SELECT * FROM notes WHERE path = ?", (path,)).fetchone()

    def save(self, **values: Any) -> None:
        """Insert or replace one note's row and commit it."""
        assert self.con is not None and not self.readonly
        row = {c: _clean(values.get(c)) for c in COLUMNS}
        with self._faults(), self.con:
            self.con.execute(
                f"INSERT OR REPLACE INTO notes ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in COLUMNS)})", [row[c] for c in COLUMNS])

    def save_failure(self, path: str, error: str, *, keep_place: bool = False,
                     **values: Any) -> bool:
        """Record a failed attempt, keeping the note's last good reflection (its outputs,
        their hashes and its decision) when it had one. With ``keep_place`` (the note could
        not even be read or parsed) its company and date stay those of that reflection.
        Returns whether a last good reflection was kept."""
        prev = self.row(path)
        kept = prev is not None and bool(prev["out_json"])
        if kept:
            assert prev is not None
            values.update({c: prev[c] for c in GOOD_COLUMNS})
            if keep_place:
                values.update({c: prev[c] for c in ("company", "date", "date_from")})
        else:
            values.update(dict.fromkeys(GOOD_COLUMNS))
        self.save(**values, path=path, status="failed", error=error)
        return kept

    def prune(self, keep: Callable[[str], bool]) -> int:
        """Forget notes that are no longer in the folder (their old outputs stay)."""
        assert self.con is not None
        gone = [p for p in self.rows() if not keep(p)]
        with self._faults(), self.con:
            self.con.executemany("DELETE FROM notes WHERE path = ?", [(p,) for p in gone])
        return len(gone)

    def close(self) -> None:
        if self.con is not None:
            with suppress(sqlite3.Error):
                self.con.close()
            self.con = None
