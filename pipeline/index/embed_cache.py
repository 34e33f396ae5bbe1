"""Vectors of note text kept between runs, keyed by the embedding model and the exact text.

Embedding a note's sentences is most of what reflecting costs locally (bench/batch.py). A
note that is due again for another model, a new prompt or a re-indexed corpus, or that was
edited by one line, then embeds only the text that is new. One SQLite file in DEBRIEF_HOME,
safe to delete at any time; any trouble with it (unwritable, locked, corrupt) only means
embedding as if it were empty, never a failed run.

Hand-rolled on purpose: a vector per sha256 in one SQLite table is all it takes; the disk
caches on PyPI (diskcache, joblib.Memory) pickle values, which a vector does not need.

A stored vector is trusted only if it is what we wrote: each row carries a digest of its key
and vector (a flipped bit, random bytes or another row's vector fail it), and the embedder
also checks that it is 384 finite floats of unit length. A row that fails is embedded afresh
and rewritten, so a damaged cache costs time, never a different answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from pipeline.home import embedding_cache_path

MAX_ROWS = 200_000  # about 330 MB of 384-float vectors; the least recently used go first
DIM = 384
DIGEST = 8  # bytes of blake2b over key and vector, stored after the vector
BLOB = DIM * 4 + DIGEST
NORM_TOLERANCE = 1e-3  # the model's vectors are unit length to about 1e-7


def usable(vec: np.ndarray) -> bool:
    """A vector the model could have made: 384 finite floats of unit length."""
    if vec.shape != (DIM,) or not np.all(np.isfinite(vec)):
        return False
    return abs(float(np.linalg.norm(vec.astype(np.float64))) - 1.0) <= NORM_TOLERANCE


def _seal(key: bytes, vec: bytes) -> bytes:
    return vec + hashlib.blake2b(key + vec, digest_size=DIGEST).digest()


def _open(key: bytes, blob: bytes) -> np.ndarray | None:
    """The vector in a stored row, or None when the row is not one we wrote intact (wrong
    length, a flipped bit, another row's vector, or the format before digests)."""
    if not isinstance(blob, bytes) or len(blob) != BLOB:
        return None
    vec = blob[:DIM * 4]
    if hashlib.blake2b(key + vec, digest_size=DIGEST).digest() != blob[DIM * 4:]:
        return None
    return np.frombuffer(vec, dtype=np.float32)


class EmbeddingCache:
    def __init__(self, path: Path, model_sha: str, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self._salt = model_sha.encode() + b"\0"
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._broken = False
        self._rows = 0  # rows in the file, an upper bound kept without counting each time
        self.rejected = 0  # stored rows found damaged in this process (and embedded afresh)

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(self._salt + text.encode("utf-8", "surrogatepass")).digest()

    def _connect(self) -> sqlite3.Connection | None:
        if self._con is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=5, check_same_thread=False,
                                      isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                # a lost last write only means embedding that text again: no fsync per commit
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, "
                            "vec BLOB NOT NULL, used REAL NOT NULL)")
                (self._rows,) = con.execute("SELECT count(*) FROM vectors").fetchone()
                self._con = con
            except (OSError, sqlite3.Error):
                self._broken = True
        return self._con

    def _fail(self) -> None:
        """Stop using the file for the rest of this process; the run goes on without it."""
        self._broken = True
        self.close()

    def close(self) -> None:
        if self._con is not None:
            with contextlib.suppress(sqlite3.Error):
                self._con.close()
            self._con = None

    def get_many(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Index in ``texts`` -> stored vector, for the texts stored before."""
        keys = [self._key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        with self._lock:
            con = self._connect()
            if con is None:
                return {}
            try:
                for start in range(0, len(keys), 500):  # SQLite's limit on ? parameters
                    part = keys[start:start + 500]
                    marks = ",".join("?" * len(part))
                    found.update(con.execute(
                        f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part).fetchall())
                if found:  # one transaction, not one per row
                    now = time.time()
                    con.execute("BEGIN")
                    con.executemany("UPDATE vectors SET used = ? WHERE key = ?",
                                    [(now, k) for k in found])
                    con.execute("COMMIT")
            except sqlite3.Error:
                self._fail()
                return {}
        out: dict[int, np.ndarray] = {}
        for i, k in enumerate(keys):
            blob = found.get(k)
            vec = _open(k, blob) if blob is not None else None
            if vec is not None:
                out[i] = vec
            elif blob is not None:
                self.rejected += 1  # embedded afresh by the caller, and the row rewritten
        return out

    def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        now = time.time()
        rows = []
        for t, v in zip(texts, vectors, strict=True):
            key = self._key(t)
            rows.append((key, _seal(key, np.asarray(v, dtype=np.float32).tobytes()), now))
        with self._lock:
            con = self._connect()
            if con is None:
                return
            try:
                con.execute("BEGIN")
                con.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
                self._rows += len(rows)  # an upper bound: a replaced row is counted again
                if self._rows > self._max_rows:  # count for real only when it may be over
                    (count,) = con.execute("SELECT count(*) FROM vectors").fetchone()
                    if count > self._max_rows:
                        con.execute("DELETE FROM vectors WHERE key IN (SELECT key FROM "
                                    "vectors ORDER BY used LIMIT ?)", (count - self._max_rows,))
                    self._rows = min(count, self._max_rows)
                con.execute("COMMIT")
            except sqlite3.Error:
                self._fail()


_OPEN: dict[tuple[str, str], EmbeddingCache] = {}
_OPEN_LOCK = threading.Lock()


def embedding_cache(model_sha: str) -> EmbeddingCache | None:
    path = embedding_cache_path()
    if path is None:
        return None
    key = (str(path), model_sha)
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = EmbeddingCache(path, model_sha)
        return _OPEN[key]


def count_rows(path: Path) -> int:
    """Vectors in a cache file, read-only (for doctor); sqlite3.Error when unreadable."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                            uri=True)) as con:
        return int(con.execute("SELECT count(*) FROM vectors").fetchone()[0])


def check_rows(path: Path) -> tuple[int, int, int]:
    """Rows, damaged rows and rows in the format before digests, read-only (for doctor);
    sqlite3.Error when unreadable. Every row is read: about a second per 100,000."""
    total = damaged = old = 0
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                            uri=True)) as con:
        for key, blob in con.execute("SELECT key, vec FROM vectors"):
            total += 1
            vec = _open(key, blob)
            if vec is None:
                if isinstance(blob, bytes) and len(blob) == DIM * 4 and usable(
                        np.frombuffer(blob, dtype=np.float32)):
                    old += 1
                else:
                    damaged += 1
            elif not usable(vec):
                damaged += 1
    return total, damaged, old


def close_all() -> None:
    """Close every open cache file (tests do, between temporary homes)."""
    with _OPEN_LOCK:
        for c in _OPEN.values():
            c.close()
        _OPEN.clear()
