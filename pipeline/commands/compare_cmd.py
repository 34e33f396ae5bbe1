"""`debrief compare NOTES_DIR`: rank the open processes in a notes folder.

The batch does the reflecting (only new or changed notes; the others keep their stored
reflection), pipeline.compare does the ranking, and this module only reads the batch's
outputs back and shows the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.commands.options import (
    index_options,
    int_range,
    profile_options,
    provider_options,
)
from pipeline.commands.progress import run_reported
from pipeline.errors import DebriefError
from pipeline.settings import IndexSettings, ProviderSettings

if TYPE_CHECKING:
    from pipeline.rank import Ranking


@click.command()
@click.argument("notes_dir", metavar="NOTES_DIR",
                type=click.Path(path_type=Path, readable=False))  # the core says why
@click.option("--out", "out_file", type=click.Path(path_type=Path, readable=False),
              default=None,
              metavar="FILE", help="Also write the report to this file (.json writes JSON, "
                                   "else Markdown); never over one of your notes.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the ranking as JSON, with the notes that failed under 'failed'.")
@click.option("--concurrency", envvar="DEBRIEF_CONCURRENCY", type=int_range("concurrency"),
              default=None, help="Notes in flight at once [default: 4 with openai, 1 offline].")
@click.option("--force", is_flag=True, help="Reflect on every note again, changed or not.")
@provider_options()
@profile_options
@index_options
def compare(notes_dir: Path, out_file: Path | None, as_json: bool, concurrency: int | None,
            force: bool, provider: ProviderSettings, profile_path: Path | None,
            no_profile: bool, index: IndexSettings) -> None:
    """Rank your open interview processes against each other.

    Groups the notes in NOTES_DIR by company (the `company:` front matter, else the file
    name) and ranks one entry per company. The latest round decides (by the `date:` front
    matter, then the `round:`); earlier rounds are shown as history. Keeps come first, then
    by the weighted total of your priorities profile (see 'debrief profile'), or by the
    confidence of each call without one.

    The report shows what separates your top two, where one process gives you leverage
    with another (an offer, or a later round, is worth mentioning to a slower company),
    and the processes to withdraw from, each with a withdrawal note to send.

    It first runs 'debrief batch' on the folder: only new or changed notes are reflected
    on; the others reuse the reflection stored in NOTES_DIR/.debrief/, so a second compare
    is quick. Your notes are never modified.

    Output: a table on a terminal, Markdown when piped, JSON with --json.

    \b
    Examples:
      debrief compare ~/interviews
      debrief compare ~/interviews > ranking.md
      debrief compare ~/interviews --out ~/ranking.md
      debrief compare ~/interviews --out ~/ranking.json
      debrief compare ~/interviews --profile ~/search-2026/profile.toml
      debrief compare ~/interviews --json | jq '.processes[] | {rank, company, score}'

    Exit codes: 0 ranked, 1 some notes failed (listed in the report, not ranked),
    2 bad folder, no notes, a bad --out or configuration.
    """
    from pipeline.batch.outputs import load_results
    from pipeline.batch.run import BatchOptions
    from pipeline.batch.scan import resolve_dirs, scan
    from pipeline.files import with_mark, write_text
    from pipeline.profile import load_profile
    from pipeline.rank import rank_processes
    from pipeline.render.ranking import ranking_markdown

    root, out_dir = resolve_dirs(notes_dir, None)
    notes = scan(root, out_dir).notes
    if not notes:
        raise DebriefError(f"{notes_dir}: no notes to compare (*.md or *.txt files, outside "
                           "hidden folders).")
    target = _check_out(out_file, root, out_dir, notes)
    opts = BatchOptions(notes_dir=notes_dir, concurrency=concurrency, force=force,
                        provider=provider, index=index,
                        profile=load_profile(profile_path, enabled=not no_profile))
    report = run_reported(opts, "debrief compare", quiet=as_json)

    loaded = load_results(report.out_dir)
    # and what failed without a state row: a folder that cannot be read, a bad file name
    failed = sorted(loaded.failed + [(r.path, r.error or "failed") for r in report.results
                                     if r.status == "failed" and r.path not in report.notes])
    comparison = rank_processes(loaded.reflections, loaded.stale)
    if report.error:
        click.echo(f"debrief compare: {report.error}", err=True)
    if not as_json:
        click.echo(f"debrief compare: {report.count('processed')} reflected, "
                   f"{report.count('skipped')} up to date, {len(failed)} failed; "
                   f"{len(comparison.processes)} compan"
                   f"{'y' if len(comparison.processes) == 1 else 'ies'} ranked.", err=True)
    # marked: a file debrief wrote, never taken for a note, and replaced only while unedited
    markdown = with_mark(ranking_markdown(comparison, failed), "ranking")
    data = comparison.model_dump()
    data["failed"] = [{"path": p, "error": e} for p, e in failed]
    as_text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if target is not None:  # the suffix decides, as for reflect --out
        write_text(target, as_text if target.suffix.lower() == ".json" else markdown)
        if not as_json:
            click.echo(f"debrief compare: wrote {target}", err=True)
    if as_json:
        click.echo(as_text, nl=False)
    elif sys.stdout.isatty():
        _show(comparison, failed)
    else:
        click.echo(markdown, nl=False)
    if failed or report.error:
        raise click.exceptions.Exit(1)


def _check_out(out_file: Path | None, root: Path, out_dir: Path,
               notes: list[Any]) -> Path | None:
    """Where --out writes, refused (before any work) when it would replace a note, or
    land in the notes folder where the next run would take it for one."""
    if out_file is None:
        return None
    from pipeline.batch.layout import NOTE_SUFFIXES, batch_files
    from pipeline.files import not_ours, written_by_us

    target = out_file.expanduser().resolve()
    if target.is_dir():
        raise DebriefError(f"--out {out_file} is a folder; give a file name, e.g. "
                           f"{out_file / 'ranking.md'}.")
    if target in {n.path for n in notes} | {n.path.resolve() for n in notes}:
        raise DebriefError(f"--out {out_file} is one of your notes; refusing to write over it.")
    if target.is_relative_to(out_dir):
        rel_out = target.relative_to(out_dir).as_posix()
        theirs = batch_files([n.rel for n in notes])
        if rel_out.casefold() in {t.casefold() for t in theirs}:
            raise DebriefError(f"--out {out_file} is a file the batch writes itself; pick "
                               "another name.")
    elif target.is_relative_to(root):
        rel = target.relative_to(root)
        hidden = any(part.startswith(".") for part in rel.parts)
        if not hidden and target.name.lower().endswith(NOTE_SUFFIXES):
            raise DebriefError(f"--out {out_file} is inside the notes folder, where the next "
                               f"run would take it for a note; write it elsewhere or under "
                               f"{out_dir}.")
    if not written_by_us(target):
        raise not_ours(target, f"--out {out_file}")
    return target


def _show(c: Ranking, failed: list[tuple[str, str]]) -> None:
    """The report on a terminal: a rich table, then the same sections as the Markdown."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from pipeline.render.ranking import (
        criterion_label,
        round_label,
        separating_rows,
        stage_label,
        verdict,
        withdraw_reason,
    )

    console = Console(highlight=False)
    if not c.processes:
        console.print("No reflections to rank.")
    else:
        by = "weighted total" if c.profile else "confidence (no priorities profile)"
        table = Table(title=f"Your open processes: keeps first, then by {by}",
                      title_justify="left")
        for name, kw in (("#", {"justify": "right"}), ("company", {}), ("decision", {}),
                         ("conf.", {"justify": "right"}), ("total", {"justify": "right"}),
                         ("score", {"justify": "right"}), ("stage", {}),
                         ("latest round", {}), ("unknown, high weight", {})):
            table.add_column(name, **kw)
        for p in c.processes:
            style = "red" if p.withdraw else "green" if p.decision == "keep" else ""
            table.add_row(
                str(p.rank), Text(p.company, style="bold"),
                Text(verdict(p.decision) + (" (withdraw)" if p.withdraw else "")
                     + (" (stale: its redo failed)" if p.stale else ""), style=style),
                f"{p.confidence:.2f}", "—" if p.total is None else f"{p.total:+d}",
                f"{p.score:+.2f}", stage_label(p.stage), Text(round_label(p.latest)),
                Text(", ".join(criterion_label(u) for u in p.unknown_high) or "—"))
        console.print(table)
    if c.separating:
        head, rows = separating_rows(c)
        table = Table(title=f"What separates {head[2]} from {head[3]}", title_justify="left")
        for i, name in enumerate(head):
            table.add_column(Text(name), justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*(Text(x) for x in row))
        console.print(table)
    if c.leverage:
        console.print(Text("\nLeverage", style="bold"))
        for lv in c.leverage:
            console.print(Text(f"  {lv.source} → {lv.target}: {lv.why}"))
    for p in (p for p in c.processes if p.withdraw):
        console.print(Text(f"\nWithdraw from {p.company}", style="bold red"))
        console.print(Text(f"  Why: {withdraw_reason(p)}."))
        if p.withdrawal_draft:
            console.print(Text("\n".join(f"    {line}" if line else ""
                                         for line in p.withdrawal_draft.splitlines())))
    earlier = [p for p in c.processes if p.history]
    if earlier:
        console.print(Text("\nEarlier rounds (only the latest ranks)", style="bold"))
        for p in earlier:
            for r in p.history:
                console.print(Text(f"  {p.company}: {round_label(r)}: {verdict(r.decision)} "
                                   f"({r.confidence:.2f}), {r.path}"))
    if failed:
        console.print(Text(f"\nFailed ({len(failed)}): not ranked; fix them and run again",
                           style="bold red"))
        for path, error in failed:
            console.print(Text(f"  {path}: {error}"))
