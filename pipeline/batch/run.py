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
from pipeline.batch.plan import Identity, Job, due_reason, note_date, strip_path
from pipeline.batch.scan import NoteFile, read_note, resolve_dirs, scan
from pipeline.batch.state import State
from pipeline.errors import DebriefError
from pipeline.files import sweep_temp_files, write_text
from pipeline.home import chroma_dir
from pipeline.index.chroma import AdviceIndex
from pipeline.index.open import ensure_index, open_index
from pipeline.index.peek import peek_fingerprint
from pipeline.llm.factory import describe, make_provider
from pipeline.notes import company_from_filename, parse_notes
from pipeline.profile import Profile
from pipeline.prompts import prompt_version
from pipeline.reflect import reflect_on
from pipeline.render.digest import RunSummary, render_digest
from pipeline.render.reflection import reflection_json, reflection_markdown
from pipeline.retrieve import retrieve
from pipeline.settings import IndexSettings, ProviderSettings

DEFAULT_CONCURRENCY = {"openai": 4, "offline": 1}
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
            error = strip_path(exc.message, job.note.rel)
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
            write_text(report.digest, render_digest(
                list(state.rows().values()),
                RunSummary(report.count("processed"), report.count("skipped"),
                           report.count("failed"), report.engine, report.model)))
            return report
        finally:
            state.close()


def _plan_and_run(opts: BatchOptions, root: Path, out_dir: Path, notes: list[NoteFile],
                  state: State, reporter: Reporter) -> BatchReport:
    # a changed profile changes every reflection: it is part of the prompt identity
    prompt_id = prompt_version(opts.profile) + (
        f"@{opts.profile.fingerprint()}" if opts.profile is not None else "")
    engine, model = describe(opts.provider)
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
            fail(nf.rel, strip_path(exc.message, nf.rel),
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
    runnable: list[Job] = []
    for job in jobs:
        error = None
        try:
            job.parsed = parse_notes(job.data, job.note.rel)
            job.company = job.parsed.company
            job.date, job.date_from = note_date(job.parsed.meta.date, job.mtime)
        except DebriefError as exc:
            error = strip_path(exc.message, job.note.rel)
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

    def prepare(job: Job) -> Any:
        return retrieve(job.parsed, index)

    limited = InFlightLimit(provider, concurrency)

    def work(job: Job, retrieval: Any) -> Any:
        result = reflect_on(job.parsed, index, limited, retrieval=retrieval,
                         profile=opts.profile)
        md_rel, json_rel = job.outs
        _write_output(out_dir, json_rel, reflection_json(result))
        _write_output(out_dir, md_rel, reflection_markdown(result))
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

    reporter.start(len(runnable))
    # two retrievals at once keep both cores busy through the Python parts of the other
    # (measured: bench/batch.py at 2 s latency, 0.72 of ideal with one, 0.75 with two)
    # two more work slots than requests: they validate and write while the others wait
    asyncio.run(run_jobs(runnable, prepare, work, done, work_slots=concurrency + 2,
                         cpu_slots=min(2, os.cpu_count() or 1)))
    return report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
