"""`debrief batch`: reflect on every new or changed note in a folder; the logic, no Click.

    scan  -> plan (hash each note, compare with the state DB: no model, no provider)
          -> run the due notes (asyncio, a semaphore, each blocking reflect in a thread)
          -> write both outputs atomically -> commit the note's state row -> digest

A note is due when its content, the prompt version, the engine or model, the advice index
or its output paths differ from its state row, or an output file is missing. The expensive
parts (the embedding model, Chroma, the provider) are opened only when something is due,
so a nightly run with nothing to do costs a directory walk and one hash per note.

Crash safety: outputs go through ``pipeline.atomic.write_text`` (temp file, fsync, rename)
and a note's row is committed only after both of its outputs exist, so after a ``kill -9``
a note is either recorded with complete outputs or due again. Leftover temp files of a
killed run are swept at the next start, under the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.atomic import write_text
from pipeline.errors import DebriefError
from pipeline.profile import Profile

NOTE_SUFFIXES = (".md", ".txt")
DEFAULT_OUT = ".debrief"
STATE_FILE = "state.sqlite3"
LOCK_FILE = "batch.lock"
PID_FILE = "batch.pid"
DIGEST_FILE = "digest.md"
RESERVED_STEMS = {"digest"}  # a top-level note called digest.md must not overwrite the digest
DEFAULT_CONCURRENCY = {"openai": 4, "offline": 1}
MAX_NOTES_BYTES = 200 * 1024  # pipeline.notes refuses more; we stop reading there too
# pipeline.atomic's temp files: ".<name>.<8 random chars>.tmp" beside the target
_TEMP_FILE = re.compile(r"^\..+\.(md|json|pid)\.[a-z0-9_]{8}\.tmp$")
_ISO_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")

STATUSES = ("processed", "skipped", "failed", "would-process")


# -- options and results -------------------------------------------------------------------
@dataclass
class BatchOptions:
    notes_dir: Path
    out_dir: Path | None = None
    concurrency: int | None = None
    since: date | None = None
    dry_run: bool = False
    force: bool = False
    provider: str = "auto"
    model: str | None = None
    base_url: str | None = None
    structured_output: str | None = "auto"
    timeout: float = 60.0
    max_tokens: int | None = None
    max_retries: int = 2
    collection: str = "advice"
    chroma_url: str | None = None
    corpus_dirs: tuple[Path, ...] = ()
    profile: Profile | None = None


@dataclass
class NoteResult:
    path: str
    status: str
    decision: str | None = None
    confidence: float | None = None
    seconds: float = 0.0
    error: str | None = None
    reason: str = ""  # why it was due or left alone; for log lines, not in the JSON

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "decision": self.decision,
                "confidence": self.confidence, "seconds": round(self.seconds, 3),
                "error": self.error}


@dataclass
class BatchReport:
    notes_dir: Path
    out_dir: Path
    results: list[NoteResult]
    seconds: float
    engine: str
    model: str | None
    concurrency: int
    dry_run: bool = False
    digest: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def to_json(self) -> dict[str, Any]:
        return {"processed": self.count("processed"), "skipped": self.count("skipped"),
                "failed": self.count("failed"), "seconds": round(self.seconds, 3),
                "results": [r.to_json() for r in self.results]}


class Reporter:
    """What the command shows while a batch runs. The default shows nothing."""

    def info(self, line: str) -> None:
        """One line of news: a stale lock taken over, a file left alone."""

    def start(self, total: int) -> None:
        """``total`` notes are about to be reflected on."""

    def done(self, result: NoteResult) -> None:
        """One note finished (processed or failed)."""


# -- finding the notes -----------------------------------------------------------------------
@dataclass(frozen=True)
class NoteFile:
    rel: str  # POSIX path relative to the notes folder; the key in the state DB
    path: Path


def resolve_dirs(notes_dir: Path, out_dir: Path | None) -> tuple[Path, Path]:
    notes_dir = Path(notes_dir).expanduser()
    if not notes_dir.exists():
        raise DebriefError(f"{notes_dir}: no such folder.")
    if not notes_dir.is_dir():
        raise DebriefError(f"{notes_dir}: is a file; give the folder that holds your notes "
                           "(or use 'debrief reflect' for one file).")
    root = notes_dir.resolve()
    out = (Path(out_dir).expanduser() if out_dir is not None else root / DEFAULT_OUT).resolve()
    if root == out or root.is_relative_to(out):
        raise DebriefError(f"--out {out} holds the notes folder itself; pick a folder inside "
                           f"{root} or elsewhere (default: {root / DEFAULT_OUT}).")
    if out.exists() and not out.is_dir():
        raise DebriefError(f"--out {out} is a file, not a folder.")
    return root, out


def scan(root: Path, out_dir: Path) -> tuple[list[NoteFile], list[tuple[str, str]]]:
    """The notes under ``root``, and (path, why) for candidates left alone.

    Hidden files and folders and the output folder are skipped. Symlinked folders are never
    entered; a symlinked file is a note only when it resolves to a regular file inside the
    folder (and outside the output folder). Nothing outside ``root`` is ever opened.
    """
    notes: list[NoteFile] = []
    ignored: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep: list[str] = []
        for d in sorted(dirnames):
            p = here / d
            if d.startswith(".") or p == out_dir:
                continue
            if p.is_symlink():
                ignored.append((p.relative_to(root).as_posix() + "/",
                                "a symlinked folder; not followed"))
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(NOTE_SUFFIXES):
                continue
            p = here / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                try:
                    target = p.resolve(strict=True)
                except (OSError, RuntimeError):
                    ignored.append((rel, "a broken symlink"))
                    continue
                if not target.is_relative_to(root):
                    ignored.append((rel, "a symlink to outside the notes folder; not followed"))
                    continue
                if target.is_relative_to(out_dir):
                    ignored.append((rel, "a symlink into the output folder; not followed"))
                    continue
            try:
                mode = p.stat().st_mode
            except OSError:
                mode = stat.S_IFREG  # let reading it report the error as a failed note
            if not stat.S_ISREG(mode):
                ignored.append((rel, "not a regular file"))
                continue
            notes.append(NoteFile(rel, p))
    notes.sort(key=lambda n: n.rel)
    return notes, sorted(ignored)


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


# -- the state database ----------------------------------------------------------------------
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


# -- the lock --------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def batch_lock(out_dir: Path, notes_dir: Path, info: Callable[[str], None]) -> Iterator[None]:
    """One batch per output folder: ``batch.lock`` (an OS lock, released even by kill -9)
    plus ``batch.pid`` naming the holder, for the message a second batch prints."""
    import filelock

    lock = filelock.FileLock(str(out_dir / LOCK_FILE), blocking=False)
    pid_path = out_dir / PID_FILE
    try:
        lock.acquire()
    except filelock.Timeout:
        pid = _read_pid(pid_path)
        who = f"pid {pid}" if pid else "another process"
        raise DebriefError(f"another debrief batch is already running on {notes_dir} ({who} "
                           f"holds {out_dir / LOCK_FILE}); try again when it has finished.",
                           exit_code=2) from None
    try:
        old = _read_pid(pid_path)
        if old is not None and old != os.getpid():
            # we hold the OS lock, so whoever wrote this pid file is gone (or no longer ours)
            state = "no longer running" if not _pid_alive(old) else "it no longer held the lock"
            info(f"took over a stale lock from pid {old} ({state}).")
        write_text(pid_path, f"{os.getpid()}\n")
        yield
    finally:
        if _read_pid(pid_path) == os.getpid():
            with contextlib.suppress(OSError):
                pid_path.unlink()
        lock.release()


def sweep_temp_files(out_dir: Path) -> int:
    """Remove temp files a killed run left behind (only pipeline.atomic's own pattern)."""
    removed = 0
    for dirpath, _dirs, filenames in os.walk(out_dir, followlinks=False):
        for name in filenames:
            if _TEMP_FILE.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed


# -- what a note needs -----------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Everything besides the note itself that a reflection depends on."""

    engine: str
    model: str | None
    prompt_version: str
    fingerprint: str


def resolve_engine(provider: str, model: str | None, base_url: str | None) -> tuple[str, str | None]:
    """The (engine, model) ``runtime.make_provider`` would build, without building it."""
    if provider == "auto":
        provider = "openai" if (os.environ.get("OPENAI_API_KEY") or base_url) else "offline"
    if provider == "offline":
        from pipeline.llm.offline import OfflineEngine

        return OfflineEngine.name, OfflineEngine.model
    from pipeline.llm.openai_provider import DEFAULT_MODEL, OpenAIProvider

    return OpenAIProvider.name, model or DEFAULT_MODEL


def peek_fingerprint(collection: str) -> str | None:
    """The embedded index's fingerprint, read straight from Chroma's SQLite file, read-only.

    Importing chromadb alone takes about a second, which a no-op nightly run must not pay.
    This reads the same value ``AdviceIndex.fingerprint()`` returns (the collection
    metadata), and gives None whenever the file is missing or not laid out as expected; the
    caller then opens the index the normal way. tests/test_batch.py checks the two agree.
    """
    from pipeline.config import home

    db = home() / "chroma" / "chroma.sqlite3"
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


def due_reason(row: sqlite3.Row | None, sha: str, ident: Identity, outs: tuple[str, str],
               out_dir: Path, force: bool) -> str | None:
    """Why a note must be reflected on again, or None when its outputs are current."""
    if force:
        return "forced"
    if row is None:
        return "new"
    if row["status"] != "ok":
        return "failed last time"
    if row["sha256"] != sha:
        return "changed"
    if row["prompt_version"] != ident.prompt_version:
        return "new prompt version"
    if row["engine"] != ident.engine or row["model"] != ident.model:
        return f"engine changed ({row['engine']}/{row['model']})"
    if row["index_fingerprint"] != ident.fingerprint:
        return "advice index changed"
    if (row["out_md"], row["out_json"]) != outs:
        return "output name changed"
    if not all((out_dir / o).is_file() for o in outs):
        return "output missing"
    return None


def read_note(nf: NoteFile) -> tuple[bytes, str, float]:
    """(bytes, sha256, mtime). Reads at most just over the size limit."""
    try:
        with nf.path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read(MAX_NOTES_BYTES + 1)
    except OSError as exc:
        raise DebriefError(f"{nf.rel}: cannot read ({exc.strerror or exc}).") from None
    if len(data) > MAX_NOTES_BYTES:
        raise DebriefError(f"{nf.rel}: notes are {st.st_size // 1024} KB, over the 200 KB "
                           "limit; split them into one file per interview.")
    return data, hashlib.sha256(data).hexdigest(), st.st_mtime


def note_date(meta_date: str | None, mtime: float) -> tuple[str, str]:
    """(ISO date, 'notes' | 'file'): the front matter date when it reads as one."""
    m = _ISO_DATE.match(meta_date or "")
    if m:
        with contextlib.suppress(ValueError):
            return date.fromisoformat(m.group(1)).isoformat(), "notes"
    return datetime.fromtimestamp(mtime).date().isoformat(), "file"


def _strip_path(message: str, rel: str) -> str:
    """Errors from pipeline.notes start with the path; the result already carries it."""
    return message[len(rel) + 2:] if message.startswith(f"{rel}: ") else message


@dataclass
class Job:
    note: NoteFile
    data: bytes
    sha: str
    mtime: float
    outs: tuple[str, str]
    reason: str
    parsed: Any = None  # pipeline.notes.Notes
    company: str = ""
    date: str = ""
    date_from: str = "file"


# -- the engine room, opened only when something is due ---------------------------------------
@dataclass
class Engines:
    opts: BatchOptions
    info: Callable[[str], None]
    index: Any = None
    provider: Any = None

    def open_index(self, *, build: bool) -> Any:
        if self.index is None:
            from pipeline import runtime

            self.index = runtime.open_index(self.opts.chroma_url, self.opts.collection)
        if build:
            from pipeline import runtime

            runtime.ensure_index(self.index, runtime.corpus_dirs(self.opts.corpus_dirs),
                                 self.info)
        return self.index

    def fingerprint(self, *, dry_run: bool) -> str:
        """The index version; cheap for the embedded index, see peek_fingerprint."""
        if not self.opts.chroma_url:
            fp = peek_fingerprint(self.opts.collection)
            if fp is not None:
                return fp
            if dry_run:
                from pipeline.config import home

                if not (home() / "chroma").is_dir():
                    return ""  # no index yet: everything would be due; do not create one
        return self.open_index(build=not dry_run).fingerprint()

    def make_provider(self) -> Any:
        if self.provider is None:
            from pipeline import runtime

            o = self.opts
            self.provider = runtime.make_provider(
                o.provider, model=o.model, base_url=o.base_url,
                structured_output=o.structured_output, timeout=o.timeout,
                max_retries=o.max_retries, max_tokens=o.max_tokens)
        return self.provider


# -- running ---------------------------------------------------------------------------------
class InFlightLimit:
    """A provider whose ``complete`` calls are at most ``limit`` at once.

    ``--concurrency`` bounds the requests the model server sees, not the work around them:
    one note's validation, rendering and writes run while the next request already holds
    the slot, so no slot idles through our own Python between two answers.
    """

    def __init__(self, provider: Any, limit: int) -> None:
        import threading

        self._provider = provider
        self._slots = threading.BoundedSemaphore(limit)
        self.name, self.model = provider.name, provider.model

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        with self._slots:
            return self._provider.complete(*args, **kwargs)


Prepare = Callable[[Job], Any]
Work = Callable[[Job, Any], Any]
Done = Callable[[Job, Any, str | None, float], None]


async def run_jobs(jobs: list[Job], prepare: Prepare, work: Work, done: Done,
                   work_slots: int, cpu_slots: int = 1) -> None:
    """Two stages per job, in worker threads: ``prepare`` (retrieval: local CPU work, at most
    ``cpu_slots`` at once) and then ``work`` (the model call and the writes, at most
    ``work_slots`` at once). Splitting them keeps every model slot busy while the next
    notes are being embedded, instead of each slot idling through its own retrieval.

    ``done(job, value, error, seconds)`` runs on the event loop's thread, one at a time, so
    the state DB has a single owner. One job's failure is reported, never raised.

    Retries are not added here: for the openai provider, the openai client inside ChatOpenAI
    already retries 429, 5xx and timeouts with exponential backoff and jitter and honours
    Retry-After (``--max-retries``); the offline engine has nothing transient to retry. A
    note that still fails is recorded as failed and is due again on the next run.
    """
    import asyncio  # here, not at the top: a run with nothing to do never needs it
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.get_running_loop()
    # to_thread uses the loop's default executor, which holds min(32, cpus + 4) threads: on
    # a 2-core box that would quietly cap --concurrency 8 at 6. Size it to both semaphores.
    executor = ThreadPoolExecutor(max_workers=work_slots + cpu_slots,
                                  thread_name_prefix="debrief-batch")
    loop.set_default_executor(executor)
    work_sem = asyncio.Semaphore(work_slots)
    cpu_sem = asyncio.Semaphore(cpu_slots)

    async def one(job: Job) -> None:
        t = time.perf_counter()
        value, error = None, None
        try:
            async with cpu_sem:
                prepared = await asyncio.to_thread(prepare, job)
            async with work_sem:
                value = await asyncio.to_thread(work, job, prepared)
        except DebriefError as exc:
            error = _strip_path(exc.message, job.note.rel)
        except Exception as exc:  # a bug for one note must not stop the others
            error = f"unexpected error: {type(exc).__name__}: {' '.join(str(exc).split())}"
        done(job, value, error, time.perf_counter() - t)

    await asyncio.gather(*(one(j) for j in jobs))


def _write_output(out_dir: Path, rel_out: str, text: str) -> None:
    target = out_dir / rel_out
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(out_dir):
        raise DebriefError(f"refusing to write {rel_out}: it resolves outside {out_dir}.")
    write_text(target, text)


def run_batch(opts: BatchOptions, reporter: Reporter | None = None) -> BatchReport:
    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    root, out_dir = resolve_dirs(opts.notes_dir, opts.out_dir)
    notes, ignored = scan(root, out_dir)
    for rel, why in ignored:
        reporter.info(f"skipped {rel}: {why}")
    left_alone = [NoteResult(rel, "skipped", reason=why)
                  for rel, why in ignored if not rel.endswith("/")]

    def finish(report: BatchReport) -> BatchReport:
        report.results = sorted(report.results + left_alone, key=lambda r: r.path)
        report.seconds = time.perf_counter() - t0
        return report

    if opts.dry_run:  # no lock, no output folder, the state only read
        state = State(out_dir / STATE_FILE, readonly=True)
        try:
            return finish(_plan_and_run(opts, root, out_dir, notes, state, reporter))
        finally:
            state.close()

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DebriefError(f"cannot create {out_dir} ({exc.strerror or exc}).") from None
    with batch_lock(out_dir, root, reporter.info):
        sweep_temp_files(out_dir)
        state = State(out_dir / STATE_FILE)
        try:
            report = finish(_plan_and_run(opts, root, out_dir, notes, state, reporter))
            state.prune({n.rel for n in notes})
            report.digest = out_dir / DIGEST_FILE
            write_text(report.digest, render_digest(state.rows(), report))
            return report
        finally:
            state.close()


def _plan_and_run(opts: BatchOptions, root: Path, out_dir: Path, notes: list[NoteFile],
                  state: State, reporter: Reporter) -> BatchReport:
    from pipeline.prompts import prompt_version

    # a changed profile changes every reflection: it is part of the prompt identity
    prompt_id = prompt_version(opts.profile) + (
        f"@{opts.profile.fingerprint()}" if opts.profile is not None else "")
    engine, model = resolve_engine(opts.provider, opts.model, opts.base_url)
    concurrency = opts.concurrency or DEFAULT_CONCURRENCY.get(engine, 1)
    engines = Engines(opts, reporter.info)
    ident = Identity(engine, model, prompt_id, engines.fingerprint(dry_run=opts.dry_run))
    outputs = output_names([n.rel for n in notes])
    rows = state.rows()
    results: list[NoteResult] = []
    jobs: list[Job] = []

    def fail(rel: str, error: str, **row: Any) -> None:
        if opts.dry_run:  # it would be tried, and fail
            results.append(NoteResult(rel, "would-process", error=error, reason="unreadable"))
            return
        results.append(NoteResult(rel, "failed", error=error))
        reporter.done(results[-1])
        state.save(path=rel, status="failed", error=error, prompt_version=prompt_id,
                   engine=engine, model=model, index_fingerprint=ident.fingerprint,
                   finished_at=_now(), **row)

    for nf in notes:
        try:
            data, sha, mtime = read_note(nf)
        except DebriefError as exc:
            from pipeline.notes import company_from_filename

            fail(nf.rel, _strip_path(exc.message, nf.rel),
                 company=company_from_filename(nf.path.name), date_from="file")
            continue
        row = rows.get(nf.rel)
        why = due_reason(row, sha, ident, outputs[nf.rel], out_dir, opts.force)
        if why is None:
            assert row is not None
            results.append(NoteResult(nf.rel, "skipped", row["decision"], row["confidence"],
                                      reason="up to date"))
            continue
        jobs.append(Job(nf, data, sha, mtime, outputs[nf.rel], why))

    # parse the due notes: cheap, and a bad note fails here without opening any model
    from pipeline.notes import company_from_filename, parse_notes

    runnable: list[Job] = []
    for job in jobs:
        error = None
        try:
            job.parsed = parse_notes(job.data, job.note.rel)
            job.company = job.parsed.company
            job.date, job.date_from = note_date(job.parsed.meta.date, job.mtime)
        except DebriefError as exc:
            error = _strip_path(exc.message, job.note.rel)
            job.company = company_from_filename(job.note.path.name)
            job.date, job.date_from = note_date(None, job.mtime)
        if opts.since and date.fromisoformat(job.date) < opts.since:
            results.append(NoteResult(job.note.rel, "skipped",
                                      reason=f"dated {job.date}, before --since"))
            continue
        if opts.dry_run:
            results.append(NoteResult(job.note.rel, "would-process", error=error,
                                      reason=job.reason))
        elif error is not None:
            fail(job.note.rel, error, sha256=job.sha, company=job.company, date=job.date,
                 date_from=job.date_from)
        else:
            runnable.append(job)

    report = BatchReport(root, out_dir, results, 0.0, engine, model, concurrency,
                         dry_run=opts.dry_run)
    if not runnable:
        return report

    # something is due: now open the provider (a missing key fails before slow work), the
    # index and the embedding model, once, in this thread
    provider = engines.make_provider()
    index = engines.open_index(build=True)
    fingerprint = index.fingerprint()
    index.embedder.embed(["warm up the embedding model once, before the threads need it"])
    if (provider.name, provider.model) != (engine, model):
        engine, model = provider.name, provider.model  # record what actually answered
        report.engine, report.model = engine, model

    from pipeline.reflect import reflect
    from pipeline.render import to_json, to_markdown
    from pipeline.retrieve import retrieve

    def prepare(job: Job) -> Any:
        return retrieve(job.parsed, index)

    limited = InFlightLimit(provider, concurrency)

    def work(job: Job, retrieval: Any) -> Any:
        result = reflect(job.parsed, index, limited, retrieval=retrieval,
                         profile=opts.profile)
        md_rel, json_rel = job.outs
        _write_output(out_dir, json_rel, to_json(result))
        _write_output(out_dir, md_rel, to_markdown(result))
        return result

    def done(job: Job, result: Any, error: str | None, seconds: float) -> None:
        rel = job.note.rel
        common = dict(path=rel, sha256=job.sha, prompt_version=prompt_id, engine=engine,
                      model=model, index_fingerprint=fingerprint, company=job.company,
                      date=job.date, date_from=job.date_from, seconds=round(seconds, 3),
                      finished_at=_now())
        if error is not None:
            state.save(**common, status="failed", error=error)
            res = NoteResult(rel, "failed", seconds=seconds, error=error, reason=job.reason)
        else:
            # both outputs exist (work wrote them); only now does the note count as done
            state.save(**common, status="ok", out_md=job.outs[0], out_json=job.outs[1],
                       decision=result.decision, confidence=result.confidence,
                       next_step=result.next_step.kind)
            res = NoteResult(rel, "processed", result.decision, result.confidence, seconds,
                             reason=job.reason)
        results.append(res)
        reporter.done(res)

    import asyncio

    reporter.start(len(runnable))
    # two retrievals at once keep both cores busy through the Python parts of the other
    # (measured: bench/batch.py at 2 s latency, 0.72 of ideal with one, 0.75 with two)
    # two more work slots than requests: they validate and write while the others wait
    asyncio.run(run_jobs(runnable, prepare, work, done, work_slots=concurrency + 2,
                         cpu_slots=min(2, os.cpu_count() or 1)))
    return report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- the digest ------------------------------------------------------------------------------
_NEXT = {"thank_you": "thank-you note", "withdrawal": "withdrawal note"}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_digest(rows: dict[str, sqlite3.Row], report: BatchReport) -> str:
    """Reflections by company (the most recent first), then the notes that failed."""
    ok = [r for r in rows.values() if r["status"] == "ok"]
    failed = sorted((r for r in rows.values() if r["status"] != "ok"), key=lambda r: r["path"])
    groups: dict[str, list[sqlite3.Row]] = {}
    for r in ok:
        groups.setdefault((r["company"] or "?").casefold(), []).append(r)
    for g in groups.values():
        g.sort(key=lambda r: r["path"])
        g.sort(key=lambda r: r["date"] or "", reverse=True)
    order = sorted(groups.values(), key=lambda g: (g[0]["company"] or "").casefold())
    order.sort(key=lambda g: g[0]["date"] or "", reverse=True)

    when = datetime.now().astimezone().isoformat(timespec="minutes")
    out = ["# Interview digest", "",
           f"_Last run {when}: {report.count('processed')} processed, "
           f"{report.count('skipped')} up to date or skipped, {report.count('failed')} failed. "
           f"{len(ok)} reflection(s) from {len(groups)} compan{'y' if len(groups) == 1 else 'ies'}"
           f"; engine {report.engine}"
           f"{f' / {report.model}' if report.model else ''}._", ""]
    if not ok:
        out += ["No reflections yet.", ""]
    for g in order:
        out += [f"## {_cell(g[0]['company'] or '?')}", "",
                "| date | notes | decision | confidence | next step |",
                "| --- | --- | --- | --- | --- |"]
        for r in g:
            when_ = r["date"] + (" (file date)" if r["date_from"] == "file" else "")
            verdict = "keep pursuing" if r["decision"] == "keep" else "decline"
            link = f"[{_cell(r['path']).replace('[', '(').replace(']', ')')}](<{r['out_md']}>)"
            out.append(f"| {when_} | {link} | {verdict} | {r['confidence']:.2f} | "
                       f"{_NEXT.get(r['next_step'], r['next_step'] or '')} |")
        out.append("")
    if failed:
        out += [f"## Failed ({len(failed)})", "",
                "These notes have no current reflection; fix them and the next run retries "
                "them (a failed note is retried on every run).", ""]
        for r in failed:
            name = r["path"].replace("`", "'")
            out.append(f"- `{name}`: {_cell(r['error'] or 'unknown error')}")
        out.append("")
    return "\n".join(out)
