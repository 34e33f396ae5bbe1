"""`debrief doctor`: is everything in place? (the checks live in pipeline/doctor.py)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.commands.options import index_options, provider_options
from pipeline.settings import IndexSettings, ProviderSettings

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--notes", "notes_dir", type=click.Path(path_type=Path), default=None,
              metavar="DIR", help="Also check the batch state of this notes folder.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="The batch output folder, when it is not DIR/.debrief (batch --out).")
@provider_options(timeout=5.0, timeout_help="Seconds for each network probe (at most 5).")
@index_options
def doctor(as_json: bool, notes_dir: Path | None, state_dir: Path | None,
           provider: ProviderSettings, index: IndexSettings) -> None:
    """Check the installation, the advice index, the model server and the batch state.

    Each check says ok, WARN or FAIL, with a hint. Keys and tokens are only ever reported
    as set or not set. Nothing is changed: an index is not built, a state DB is opened
    read-only.

    \b
    Examples:
      debrief doctor
      debrief doctor --json | jq '.checks[] | select(.status != "ok")'
      debrief doctor --notes ~/interviews
      OPENAI_BASE_URL=http://127.0.0.1:8080/v1 debrief doctor --model local

    Exit codes: 0 nothing failed (warnings allowed), 1 a check failed.
    """
    from pipeline.doctor import DoctorOptions, run

    report = run(DoctorOptions(provider=provider, index=index, notes_dir=notes_dir,
                               state_dir=state_dir))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("", "check", "found", "hint"):
            table.add_column(col, overflow="fold")
        for c in report.checks:
            table.add_row(f"[{STYLE[c.status]}]{MARK[c.status]}[/]", c.name, c.detail, c.hint)
        Console(soft_wrap=False).print(table)
    else:
        for c in report.checks:
            click.echo(f"{MARK[c.status]}  {c.name}: {c.detail}"
                       + (f"\n      hint: {c.hint}" if c.hint else ""))
    counts = report.to_json()["counts"]
    summary = f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed."
    if not as_json:
        click.echo(summary)
    if report.failed:
        raise click.exceptions.Exit(1)
