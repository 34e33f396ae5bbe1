"""`debrief reflect NOTES`: one interview, one reflection."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.commands.options import (
    index_options,
    int_range,
    profile_options,
    provider_options,
)
from pipeline.settings import IndexSettings, ProviderSettings


@click.command()
@click.argument("notes_file", metavar="NOTES",
                type=click.Path(path_type=Path, readable=False))  # read_notes says why
@click.option("--json", "as_json", is_flag=True, help="Print the reflection as JSON.")
@click.option("--out", "out_path",
              type=click.Path(dir_okay=False, readable=False, path_type=Path),
              help="Also write the reflection here (.json writes JSON, else Markdown). "
                   "Written atomically; never over a file debrief did not write.")
@click.option("--show-sources", is_flag=True,
              help="List the retrieved advice passages with their scores.")
@click.option("-k", "--top-k", "top_k", envvar="DEBRIEF_TOP_K", default=8, show_default=True,
              type=int_range("top_k"), help="How many advice passages to retrieve.")
@provider_options()
@profile_options
@index_options
def reflect(notes_file: Path, as_json: bool, out_path: Path | None, show_sources: bool,
            top_k: int, provider: ProviderSettings, profile_path: Path | None,
            no_profile: bool, index: IndexSettings) -> None:
    """Reflect on one interview: keep pursuing or decline, and why.

    NOTES is a Markdown or text file. Optional front matter helps:

    \b
      ---
      company: Acme
      role: Data Engineer
      date: 2026-11-20
      round: 2
      interviewers: [Dana Ruiz]
      current_pay: 95k
      ---
      - team seemed sharp, manager does weekly 1:1s
      - they want a 2-week unpaid trial project before an offer

    \b
    Examples:
      debrief reflect notes/2026-11-20-acme.md
      debrief reflect notes.md --json | jq .decision
      debrief reflect notes.md --out reflections/acme.md --show-sources
      OPENAI_BASE_URL=http://127.0.0.1:11434/v1 debrief reflect notes.md --model llama3.1

    With a priorities profile ('debrief profile init'), the reflection also scores each of
    your criteria against your current situation, weighs them with your weights, and a
    deal-breaker found in the notes means decline.

    Exit codes: 0 done, 2 bad input or configuration (one line on stderr).
    """
    from pipeline.errors import DebriefError
    from pipeline.files import not_ours, with_mark, write_text, written_by_us
    from pipeline.index.open import ensure_index, open_index
    from pipeline.llm.factory import describe, make_provider
    from pipeline.notes import read_notes
    from pipeline.profile import load_profile
    from pipeline.reflect import reflect_on
    from pipeline.render.reflection import reflection_json, reflection_markdown
    from pipeline.retrieve import RetrieveOptions

    notes = read_notes(notes_file)
    profile = load_profile(profile_path, enabled=not no_profile)
    if out_path is not None and out_path.resolve() == notes_file.resolve():
        raise DebriefError("--out points at your notes file; notes are never overwritten.")
    if out_path is not None and not written_by_us(out_path):
        raise not_ours(out_path, f"--out {out_path}")
    err = sys.stderr
    quiet = as_json or not err.isatty()

    def status(msg: str) -> None:
        if not quiet:
            click.echo(f"· {msg}", err=True)

    # the provider first: a missing key fails before any slow work
    status(f"starting {describe(provider)[0]} engine")
    engine = make_provider(provider)
    try:
        advice = open_index(index)
        if index.corpus_dirs:
            # your own advice is used at once, as 'debrief index --corpus' would index it:
            # only new or changed passages are embedded, and a bad document fails the same way
            built = advice.build(index.corpus_folders(), notify=lambda m: click.echo(m, err=True))
            if built.embedded or built.deleted:
                click.echo(f"debrief: indexed the advice in {', '.join(map(str, index.corpus_dirs))}"
                           f" (embedded {built.embedded}, deleted {built.deleted} passages)",
                           err=True)
        else:
            ensure_index(advice, index.corpus_folders(), lambda m: click.echo(m, err=True))
        result = reflect_on(notes, advice, engine, opts=RetrieveOptions(k=top_k),
                            status=status, profile=profile)
    finally:
        engine.close()

    if out_path is not None:
        text = (reflection_json(result) if out_path.suffix.lower() == ".json"
                else with_mark(reflection_markdown(result), "reflection"))
        write_text(out_path, text)
        status(f"wrote {out_path}")
    if as_json:
        click.echo(reflection_json(result), nl=False)
        return
    md = reflection_markdown(result, show_sources=show_sources)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(md))
    else:  # marked: saved with '>' into a notes folder, it is not taken for a note
        click.echo(with_mark(md, "reflection"), nl=False)
