"""`debrief batch NOTES_DIR`: the nightly run over a notes folder (logic in pipeline/batch.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from pipeline.commands.options import (
    index_options,
    int_range,
    profile_options,
    provider_options,
)
from pipeline.commands.progress import run_reported
from pipeline.settings import IndexSettings, ProviderSettings


@click.command()
@click.argument("notes_dir", metavar="NOTES_DIR",
                type=click.Path(path_type=Path, readable=False))  # the core says why
@click.option("--out", "out_dir", type=click.Path(path_type=Path, readable=False),
              default=None, metavar="DIR",
              help="Where reflections, the digest and the state go "
                   "[default: NOTES_DIR/.debrief].")
@click.option("--concurrency", envvar="DEBRIEF_CONCURRENCY", type=int_range("concurrency"),
              default=None, help="Notes in flight at once [default: 4 with openai, 1 offline].")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              metavar="YYYY-MM-DD",
              help="Only notes dated on or after this day (the front-matter date, else a "
                   "date starting the file name, e.g. 2026-12-05-orbit.md, else the file's "
                   "modification day); older ones are left alone.")
@click.option("--dry-run", is_flag=True, help="List what would be done; write nothing.")
@click.option("--force", is_flag=True, help="Reflect on every note again, changed or not.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a summary object with per-note results and timings.")
@provider_options()
@profile_options
@index_options
def batch(notes_dir: Path, out_dir: Path | None, concurrency: int | None,
          since: datetime | None, dry_run: bool, force: bool, as_json: bool,
          provider: ProviderSettings, profile_path: Path | None, no_profile: bool,
          index: IndexSettings) -> None:
    """Reflect on every new or changed note in a folder, for a nightly run.

    Finds *.md and *.txt notes under NOTES_DIR (recursively; hidden folders and symlinks
    that point outside are skipped) and writes one reflection per note, Markdown and JSON,
    into NOTES_DIR/.debrief/, mirroring the folder layout, plus digest.md: every reflection
    by company, newest first, and the notes that failed. Your notes are never modified.

    Only notes that are new or changed are done again (or all of them after a new prompt
    version, another model or a re-indexed corpus); state.sqlite3 remembers the rest, and a
    run with nothing to do takes a fraction of a second. One batch per folder at a time.

    \b
    Examples:
      debrief batch ~/interviews
      debrief batch ~/interviews --dry-run
      debrief batch ~/interviews --since 2026-01-01 --json | jq .failed
      OPENAI_API_KEY=... debrief batch ~/interviews --provider openai --concurrency 8

    Never writes over a file it did not write: a note whose output path holds one of
    yours fails, and the others go on.

    Exit codes: 0 all done, 1 some notes failed (listed in the digest), 2 bad folder,
    configuration, a storage fault (full disk, read-only or damaged state), or another
    batch running.
    """
    from pipeline.batch.run import BatchAborted, BatchOptions
    from pipeline.errors import DebriefError
    from pipeline.profile import load_profile

    opts = BatchOptions(notes_dir=notes_dir, out_dir=out_dir, concurrency=concurrency,
                        since=since.date() if since else None, dry_run=dry_run, force=force,
                        provider=provider, index=index,
                        profile=load_profile(profile_path, enabled=not no_profile))
    try:
        report = run_reported(opts, "debrief batch", quiet=as_json)
    except BatchAborted as exc:
        if as_json:  # what was done before the fault; the fault itself on stderr, exit 2
            click.echo(json.dumps(exc.report.to_json(), indent=2))
        raise

    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif dry_run:
        for r in report.results:
            if r.status == "would-process":
                extra = f"; it would fail: {r.error}" if r.error else ""
                click.echo(f"would process {r.path} ({r.reason}{extra})")
        click.echo(f"dry run: {report.count('would-process')} to do, "
                   f"{report.count('skipped')} up to date or skipped; nothing was written.")
    else:
        click.echo(f"{report.count('processed')} processed, {report.count('skipped')} up to "
                   f"date or skipped, {report.count('failed')} failed in {report.seconds:.1f} s "
                   f"({report.engine}, concurrency {report.concurrency}). "
                   + (f"Digest: {report.digest}" if report.digest else "No digest written."))
    if report.error:  # the run itself, e.g. a digest.md there that is not ours
        raise DebriefError(report.error, exit_code=1)
    if report.count("failed") and not dry_run:
        raise click.exceptions.Exit(1)


