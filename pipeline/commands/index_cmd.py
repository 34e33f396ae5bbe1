"""`debrief index`: embed the advice corpus into Chroma, incrementally."""

from __future__ import annotations

import json
import sys

import click

from pipeline.commands.options import index_options
from pipeline.settings import IndexSettings


@click.command()
@click.option("--rebuild", is_flag=True, help="Drop the index and embed everything again.")
@click.option("--no-default-corpus", is_flag=True,
              help="Index only the --corpus folders, not the shipped advice.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@index_options
def index(rebuild: bool, no_default_corpus: bool, as_json: bool,
          index: IndexSettings) -> None:
    """Build or update the advice index.

    Only new or changed passages are embedded; passages of removed documents are deleted;
    an unchanged corpus embeds nothing. `debrief reflect` builds a missing index by itself,
    so you need this only after changing the corpus, or with --corpus for your own advice.

    \b
    Examples:
      debrief index
      debrief index --corpus ~/advice --corpus ./team-advice
      debrief index --rebuild
      debrief index --chroma-url http://127.0.0.1:8000 --collection team-advice
    """
    from pipeline.errors import DebriefError
    from pipeline.index.open import open_index

    dirs = index.corpus_folders(include_default=not no_default_corpus)
    if not dirs:
        raise DebriefError("--no-default-corpus needs at least one --corpus folder.")
    idx = open_index(index, rebuild=rebuild, notify=lambda m: click.echo(m, err=True))
    err = sys.stderr
    if err.isatty() and not as_json:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("embedding", total=None)
            report = idx.build(dirs, rebuild=rebuild,
                               progress=lambda done, total: bar.update(task, completed=done,
                                                                       total=total or 1))
    else:
        report = idx.build(dirs, rebuild=rebuild)
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2))
        return
    click.echo(
        f"{report.docs} documents, {report.chunks} passages, {report.cues} cue lines in "
        f"{report.location} (collection '{index.collection}'): embedded {report.embedded}, "
        f"deleted {report.deleted}, unchanged {report.unchanged}. Version {report.fingerprint}."
    )
