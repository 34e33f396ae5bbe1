"""How a running batch reports itself, for `batch` and for `compare` (which runs one first):
a rich progress bar on a terminal, plain lines on stderr otherwise (cron mails them)."""

from __future__ import annotations

from typing import Any

import click


class Lines:
    """Plain log lines on stderr; with ``quiet`` (--json: stdout is the report) only news
    and failures."""

    def __init__(self, prog: str, quiet: bool) -> None:
        self.prog = prog
        self.quiet = quiet

    def info(self, line: str) -> None:
        click.echo(f"{self.prog}: {line}", err=True)

    def start(self, total: int) -> None:
        if not self.quiet:
            click.echo(f"{self.prog}: {total} new or changed note(s) to reflect on", err=True)

    def done(self, r: Any) -> None:
        if r.status == "failed":
            click.echo(f"failed {r.path}: {r.error}", err=True)
        elif not self.quiet:
            click.echo(f"reflected {r.path}: {r.decision} ({r.confidence:.2f}) in "
                       f"{r.seconds:.1f} s [{r.reason}]", err=True)


def run_reported(opts: Any, prog: str, *, quiet: bool) -> Any:
    """``run_batch`` with the bar on a terminal (unless ``quiet``), plain lines otherwise."""
    import sys

    from pipeline.batch.run import run_batch

    if sys.stderr.isatty() and not quiet:
        return run_with_progress(opts, prog)
    return run_batch(opts, Lines(prog, quiet=quiet))


def run_with_progress(opts: Any, prog: str) -> Any:
    """``run_batch`` with a progress bar on stderr; its log lines print above the bar."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.batch.run import run_batch

    console = Console(stderr=True)
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:

        class Bar:
            task: Any = None

            def info(self, line: str) -> None:
                bar.console.print(f"{prog}: {line}", markup=False, highlight=False)

            def start(self, total: int) -> None:
                self.task = bar.add_task("reflecting", total=total)

            def done(self, r: Any) -> None:
                if r.status == "failed":
                    bar.console.print(f"failed {r.path}: {r.error}", markup=False,
                                      highlight=False)
                if self.task is not None:
                    bar.update(self.task, advance=1, description=r.path[-40:])

        return run_batch(opts, Bar())
