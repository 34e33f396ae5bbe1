"""`debrief batch`: reflect on every new or changed note in a folder; the logic, no Click.

    scan  -> plan (hash each note, compare with the state DB: no model, no provider)
          -> run the due notes (asyncio, a semaphore, each blocking reflect in a thread)
          -> write both outputs atomically -> commit the note's state row -> digest

A note is due when its content, the prompt version, the engine or model, the advice index
or its output paths differ from its state row, or an output file is missing. The expensive
parts (the embedding model, Chroma, the provider) are opened only when something is due,
so a nightly run with nothing to do costs a directory walk and one hash per note.

Crash safety: outputs go through ``pipeline.files.write_text`` (temp file, fsync, rename)
and a note's row is committed only after both of its outputs exist, so after a ``kill -9``
a note is either recorded with complete outputs or due again. Leftover temp files of a
killed run are swept at the next start, under the lock.

Never over a file we did not write: an output path that holds something else (a note, a
file of yours, one changed since we wrote it) fails that note. What we write carries a
mark (``pipeline.files.with_mark``) and the state records its hash, so the scan never takes
our outputs for notes, wherever they are.

Failures: whatever goes wrong with one note (reading, parsing, the model, writing, saving
its row) is that note's failure, and a failed redo keeps its last good reflection. A fault
of the storage itself (a full disk, a read-only or damaged state file) stops the batch:
``BatchAborted`` carries what was done before it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline.batch.layout import DIGEST_FILE, STATE_FILE, output_names
from pipeline.batch.lock import batch_lock
from pipeline.batch.plan import Identity, Job, due_reason, job_date, strip_path
from pipeline.batch.scan import (
    Found,
    NoteFile,
    is_own_output,
    read_note,
    recorded_outputs,
    resolve_dirs,
    scan,
)
from pipeline.batch.state import State
from pipeline.errors import DebriefError
from pipeline.files import (
    StorageError,
    not_ours,
    os_error,
    sha256_text,
    sweep_temp_files,
    with_mark,
    write_text,
    written_by_us,
)
from pipeline.home import chroma_dir
from pipeline.index.chroma import AdviceIndex
from pipeline.index.open import ensure_index, open_index
from pipeline.index.peek import peek_fingerprint
from pipeline.llm.factory import describe, make_provider
from pipeline.notes import company_from_filename, note_date, parse_notes
from pipeline.profile import Profile
from pipeline.prompts import prompt_version
from pipeline.reflect import reflect_on
from pipeline.render.digest import RunSummary, render_digest
from pipeline.render.reflection import reflection_json, reflection_markdown
from pipeline.retrieve import retrieve
from pipeline.settings import IndexSettings, ProviderSettings

DEFAULT_CONCURRENCY = {"openai": 4, "offline": 1, "local": 1}
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
    provider: ProviderSettings = field(default_factory=ProviderSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
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
    error: str | None = None  # what went wrong with the run itself (the digest, a fault)
    notes: set[str] = field(default_factory=set)  # the notes found (not our own outputs)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def to_json(self) -> dict[str, Any]:
        data = {"processed": self.count("processed"), "skipped": self.count("skipped"),
                "failed": self.count("failed"), "seconds": round(self.seconds, 3),
                "results": [r.to_json() for r in self.results]}
        if self.error:
            data["error"] = self.error
        return data


class BatchAborted(StorageError):
    """A storage fault stopped the batch (exit 2); ``report`` is what it did before."""

    def __init__(self, fault: DebriefError, report: BatchReport) -> None:
        super().__init__(fault.message, exit_code=2)
        self.report = report
        report.error = fault.message


class Reporter:
    """What the command shows while a batch runs. The default shows nothing."""

    def info(self, line: str) -> None:
        """One line of news: a stale lock taken over, a file left alone."""

    def start(self, total: int) -> None:
        """``total`` notes are about to be reflected on."""

    def done(self, result: NoteResult) -> None:
        """One note finished (processed or failed)."""


# -- the engine room, opened only when something is due ---------------------------------------
@dataclass
class Engines:
    """The index and the provider, opened once and only when a note is due."""

    opts: BatchOptions
    info: Callable[[str], None]
    index: AdviceIndex | None = None
    provider: Any = None

    def open_index(self, *, build: bool) -> AdviceIndex:
        if self.index is None:
            self.index = open_index(self.opts.index)
        if build:
            ensure_index(self.index, self.opts.index.corpus_folders(), self.info)
        return self.index

    def fingerprint(self, *, dry_run: bool) -> str:
        """The index version; cheap for the embedded index, see peek_fingerprint."""
        if not self.opts.index.chroma_url:
            fp = peek_fingerprint(self.opts.index.collection)
            if fp is not None:
                return fp
            if dry_run and not chroma_dir().is_dir():
                return ""  # no index yet: everything would be due; do not create one
        return self.open_index(build=not dry_run).fingerprint()

    def make_provider(self) -> Any:
        if self.provider is None:
            self.provider = make_provider(self.opts.provider)
        return self.provider


# -- running ---------------------------------------------------------------------------------
class InFlightLimit:
    """A provider whose ``complete`` calls are at most ``limit`` at once.

    ``--concurrency`` bounds the requests the model server sees, not the work around them:
    one note's validation, rendering and writes run while the next request already holds
    the slot, so no slot idles through our own Python between two answers.
    """

    def __init__(self, provider: Any, limit: int) -> None:
        self._provider = provider
        self._slots = threading.BoundedSemaphore(limit)
        self.name, self.model = provider.name, provider.model

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        with self._slots:
            return self._provider.complete(*args, **kwargs)


Prepare = Callable[[Job], Any]
Work = Callable[[Job, Any], Any]
Done = Callable[[Job, Any, BaseException | None, float], None]


async def run_jobs(jobs: list[Job], prepare: Prepare, work: Work, done: Done,
                   work_slots: int, cpu_slots: int = 1,
                   stopped: Callable[[], bool] = lambda: False) -> None:
    """Two stages per job, in worker threads: ``prepare`` (retrieval: local CPU work, at most
    ``cpu_slots`` at once) and then ``work`` (the model call and the writes, at most
    ``work_slots`` at once). Splitting them keeps every model slot busy while the next
    notes are being embedded, instead of each slot idling through its own retrieval.

    ``done(job, value, error, seconds)`` runs on the event loop's thread, one at a time, so
    the state DB has a single owner; ``error`` is the exception, or None. One job's failure
    is reported, never raised. Once ``stopped()`` (a storage fault), jobs not yet started
    are not started: ``done`` gets them with a NotStarted error.

    Retries are not added here: for the openai provider, the openai client inside ChatOpenAI
    already retries 429, 5xx and timeouts with exponential backoff and jitter and honours
    Retry-After (``--max-retries``); the offline engine has nothing transient to retry. A
    note that still fails is recorded as failed and is due again on the next run.
    """
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
        value: Any = None
        error: BaseException | None = None
        try:
            async with cpu_sem:
                if stopped():
                    raise NotStarted()
                prepared = await asyncio.to_thread(prepare, job)
            async with work_sem:
                if stopped():
                    raise NotStarted()
                value = await asyncio.to_thread(work, job, prepared)
        except Exception as exc:  # a bug for one note must not stop the others
            error = exc
        done(job, value, error, time.perf_counter() - t)

    await asyncio.gather(*(one(j) for j in jobs))


class NotStarted(Exception):
    """A due note left alone because a storage fault stopped the batch."""


def describe_error(exc: BaseException, rel: str) -> str:
    """One line for a note's failure, whatever it was."""
    if isinstance(exc, DebriefError):
        return strip_path(exc.message, rel)
    return f"unexpected error: {type(exc).__name__}: {' '.join(str(exc).split())}"


def _output_target(out_dir: Path, rel_out: str, recorded: dict[str, str | None]) -> Path:
    """Where an output goes, refused when it would leave the output folder or replace a
    file debrief did not write."""
    target = out_dir / rel_out
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(target.parent, exc, "create") from None
    if not target.parent.resolve().is_relative_to(out_dir):
        raise DebriefError(f"refusing to write {rel_out}: it resolves outside {out_dir}.")
    legacy = rel_out in recorded and recorded[rel_out] is None  # recorded before hashes
    if not legacy and not written_by_us(target, recorded.get(rel_out)):
        raise not_ours(target, f"its output {target}")
    return target


def run_batch(opts: BatchOptions, reporter: Reporter | None = None) -> BatchReport:
    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    root, out_dir = resolve_dirs(opts.notes_dir, opts.out_dir)
    found = scan(root, out_dir)
    if not found.notes and not found.problems:  # before anything is created or opened
        raise DebriefError(f"no notes found in {opts.notes_dir} (*.md or *.txt; hidden "
                           "folders are skipped); give the folder that holds your notes.")
    for rel, why in found.ignored:
        reporter.info(f"skipped {rel}: {why}")
    left_alone = [NoteResult(rel, "skipped", reason=why)
                  for rel, why in found.ignored if not rel.endswith("/")]
    for rel, why in found.problems:  # no state row: the run says so, and exits 1
        left_alone.append(NoteResult(rel, "failed", error=why))
        if not opts.dry_run:
            reporter.done(left_alone[-1])

    engine, model = describe(opts.provider)
    report = BatchReport(root, out_dir, [], 0.0, engine, model,
                         opts.concurrency or DEFAULT_CONCURRENCY.get(engine, 1),
                         dry_run=opts.dry_run)

    def finish() -> BatchReport:
        if report.seconds == 0.0:  # once, even when a fault comes after
            report.results = sorted(report.results + left_alone, key=lambda r: r.path)
            report.seconds = max(time.perf_counter() - t0, 1e-6)
        return report

    try:
        if opts.dry_run:  # no lock, no output folder, the state only read
            state = State(out_dir / STATE_FILE, readonly=True)
            try:
                _plan_and_run(opts, root, out_dir, found, state, reporter, report)
                return finish()
            finally:
                state.close()
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            err = os_error(out_dir, exc, "create")
            raise (err if isinstance(err, StorageError) else StorageError(
                f"{err.message.rstrip('.')}: pick another --out.")) from None
        with batch_lock(out_dir, root, reporter.info):
            sweep_temp_files(out_dir)
            state = State(out_dir / STATE_FILE)
            try:
                _plan_and_run(opts, root, out_dir, found, state, reporter, report)
                finish()
                kept = tuple(found.unreadable_dirs())  # their notes are not gone
                state.prune(lambda rel: rel in report.notes or rel.startswith(kept))
                _write_digest(out_dir, state, report, found)
                return report
            finally:
                state.close()
    except StorageError as exc:
        finish()
        raise BatchAborted(exc, report) from None


def _write_digest(out_dir: Path, state: State, report: BatchReport, found: Found) -> None:
    """digest.md, marked as ours; never over a digest.md that is not ours (then the run
    says so and exits 1)."""
    target = out_dir / DIGEST_FILE
    if not written_by_us(target):
        report.error = not_ours(target, f"the digest {target}").message
        return
    write_text(target, with_mark(render_digest(
        [_dated(row) for row in state.rows().values()],
        RunSummary(report.count("processed"), report.count("skipped"),
                   report.count("failed"), report.engine,
                   report.model, problems=found.problems)), "digest"))
    report.digest = target


def _dated(row: Any) -> Any:
    """A state row whose date came from the file's modification day, dated by its file name
    when that starts with one (rows recorded before the name's date counted)."""
    if row["date_from"] != "file":
        return row
    found, source = note_date(None, row["path"])
    return {**dict(row), "date": found, "date_from": source} if found else row


def _plan_and_run(opts: BatchOptions, root: Path, out_dir: Path, found: Found,
                  state: State, reporter: Reporter, report: BatchReport) -> None:
    """Plan, then run what is due; results go into ``report`` as they come, so that what was
    done is known even when a storage fault stops the run (it raises StorageError)."""
    # a changed profile changes every reflection: it is part of the prompt identity
    prompt_id = prompt_version(opts.profile) + (
        f"@{opts.profile.fingerprint()}" if opts.profile is not None else "")
    engine, model = report.engine, report.model
    concurrency = report.concurrency
    engines = Engines(opts, reporter.info)
    ident = Identity(engine, model, prompt_id, engines.fingerprint(dry_run=opts.dry_run))
    rows = state.rows()
    recorded = {**{r["out_md"]: r["md_sha256"] for r in rows.values() if r["out_md"]},
                **{r["out_json"]: r["json_sha256"] for r in rows.values() if r["out_json"]}}
    results = report.results
    fatal: list[StorageError] = []  # the first storage fault: nothing more is started

    def save_failure(rel: str, error: str, *, keep_place: bool = False,
                     **row: Any) -> str:
        """Record a failed note, keeping its last good reflection. A storage fault stops
        the batch; anything else that stops the row being saved is told in the error."""
        if fatal:
            return error
        try:
            state.save_failure(rel, error, keep_place=keep_place, prompt_version=prompt_id,
                               engine=engine, model=model, finished_at=_now(), **row)
        except StorageError as exc:
            fatal.append(exc)
        except Exception as exc:  # its row is not written: it stays due, and says why
            error += f" (and its state row could not be saved: {describe_error(exc, rel)})"
        return error

    def fail(rel: str, error: str, **row: Any) -> None:
        if opts.dry_run:  # it would be tried, and fail
            results.append(NoteResult(rel, "would-process", error=error, reason="unreadable"))
            return
        error = save_failure(rel, error, keep_place=True,
                             index_fingerprint=ident.fingerprint, **row)
        results.append(NoteResult(rel, "failed", error=error))
        reporter.done(results[-1])
        if fatal:
            raise fatal[0]

    # read every candidate: what debrief wrote itself (a reflection saved with --out, or a
    # visible output folder) is never a note, and the output names depend on the notes
    outs_of = recorded_outputs(rows)
    read: list[tuple[NoteFile, bytes, str, float]] = []
    for nf in found.notes:
        try:
            data, sha, mtime = read_note(nf)
        except DebriefError as exc:
            report.notes.add(nf.rel)
            fail(nf.rel, strip_path(exc.message, nf.rel),
                 company=company_from_filename(nf.path.name), date_from="file")
            continue
        if is_own_output(nf, data, sha, out_dir, outs_of):
            continue
        report.notes.add(nf.rel)
        read.append((nf, data, sha, mtime))
    outputs = output_names(sorted(report.notes))

    jobs: list[Job] = []
    for nf, data, sha, mtime in read:
        row = rows.get(nf.rel)
        why = due_reason(row, sha, ident, outputs[nf.rel], out_dir, opts.force)
        if why is None:
            assert row is not None
            results.append(NoteResult(nf.rel, "skipped", row["decision"], row["confidence"],
                                      reason="up to date"))
            continue
        jobs.append(Job(nf, data, sha, mtime, outputs[nf.rel], why))

    # parse the due notes: cheap, and a bad note fails here without opening any model
    runnable: list[Job] = []
    for job in jobs:
        error = None
        try:
            job.parsed = parse_notes(job.data, job.note.rel)
            job.company = job.parsed.company
            job.date, job.date_from = job_date(job.parsed.meta.date, job.note, job.mtime)
        except Exception as exc:  # DebriefError, or a bug: either way this note's failure
            error = describe_error(exc, job.note.rel)
            job.company = company_from_filename(job.note.path.name)
            job.date, job.date_from = job_date(None, job.note, job.mtime)
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

    if not runnable:
        return

    # something is due: now open the provider (a missing key fails before slow work), the
    # index and the embedding model, once, in this thread
    provider = engines.make_provider()
    index = engines.open_index(build=True)
    fingerprint = index.fingerprint()
    index.embedder.embed(["warm up the embedding model once, before the threads need it"])
    if (provider.name, provider.model) != (engine, model):
        engine, model = provider.name, provider.model  # record what actually answered
        report.engine, report.model = engine, model

    def prepare(job: Job) -> Any:
        return retrieve(job.parsed, index)

    limited = InFlightLimit(provider, concurrency)

    def work(job: Job, retrieval: Any) -> tuple[Any, str, str]:
        result = reflect_on(job.parsed, index, limited, retrieval=retrieval,
                            profile=opts.profile)
        md_rel, json_rel = job.outs
        js = reflection_json(result)
        md = with_mark(reflection_markdown(result), "reflection")
        # both refused before either is written: never one new output beside an old one
        json_target = _output_target(out_dir, json_rel, recorded)
        md_target = _output_target(out_dir, md_rel, recorded)
        write_text(json_target, js)
        write_text(md_target, md)
        return result, sha256_text(md), sha256_text(js)

    def done(job: Job, value: Any, exc: BaseException | None, seconds: float) -> None:
        rel = job.note.rel
        if isinstance(exc, StorageError) and not fatal:
            fatal.append(exc)
        if fatal and (exc is None or isinstance(exc, (StorageError, NotStarted))):
            # nothing more is recorded; it is due again on the next run
            why = "not done" if isinstance(exc, NotStarted) else "not recorded"
            res = NoteResult(rel, "failed", seconds=seconds, reason=job.reason,
                             error=f"{why}: the batch stopped on a storage fault; run "
                                   "again once it is fixed")
            results.append(res)
            reporter.done(res)
            return
        common = dict(sha256=job.sha, index_fingerprint=fingerprint, company=job.company,
                      date=job.date, date_from=job.date_from, seconds=round(seconds, 3))
        if exc is None:
            result, md_sha, json_sha = value
            now = _now()
            try:
                # both outputs exist (work wrote them); only now does the note count as done
                state.save(path=rel, **common, prompt_version=prompt_id, engine=engine,
                           model=model, finished_at=now, status="ok", out_md=job.outs[0],
                           out_json=job.outs[1], md_sha256=md_sha, json_sha256=json_sha,
                           decision=result.decision, confidence=result.confidence,
                           next_step=result.next_step.kind, ok_at=now)
            except StorageError as fault:
                fatal.append(fault)
                return done(job, None, fault, seconds)
            except Exception as bad:  # this note's failure, not the batch's
                exc = bad
            else:
                res = NoteResult(rel, "processed", result.decision, result.confidence,
                                 seconds, reason=job.reason)
                results.append(res)
                reporter.done(res)
                return
        error = save_failure(rel, describe_error(exc, rel), **common)
        res = NoteResult(rel, "failed", seconds=seconds, error=error, reason=job.reason)
        results.append(res)
        reporter.done(res)

    reporter.start(len(runnable))
    # two retrievals at once keep both cores busy through the Python parts of the other
    # (measured: bench/batch.py at 2 s latency, 0.72 of ideal with one, 0.75 with two)
    # two more work slots than requests: they validate and write while the others wait
    try:
        asyncio.run(run_jobs(runnable, prepare, work, done, work_slots=concurrency + 2,
                             cpu_slots=min(2, os.cpu_count() or 1),
                             stopped=lambda: bool(fatal)))
    finally:
        provider.close()  # a local model server lives for the run, and no longer
    if fatal:
        raise fatal[0]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
