"""`debrief profile`: write, show, edit and check your priorities (the file: pipeline/profile.py)."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.errors import DebriefError

if TYPE_CHECKING:
    from pipeline.profile import Profile

F = Callable[..., Any]


def path_option(fn: F) -> F:
    return click.option(
        "--path", "path", envvar="DEBRIEF_PROFILE", default=None, metavar="FILE",
        type=click.Path(path_type=Path, readable=False),  # errors: one line, ours
        help="The profile file [default: $DEBRIEF_HOME/profile.toml; env DEBRIEF_PROFILE].",
    )(fn)


@click.group(invoke_without_command=True)
@click.pass_context
def profile(ctx: click.Context) -> None:
    """Your priorities: what matters to you in a job, and how much.

    A small TOML file, $DEBRIEF_HOME/profile.toml (or DEBRIEF_PROFILE, or --path). With it,
    'debrief reflect' scores each of your criteria, weighs them with your weights against
    your current situation, and a deal-breaker found in the notes means decline. Without
    it, reflections stay as they are. 'debrief profile' alone shows the profile.

    \b
    Examples:
      debrief profile init                  # a few questions
      debrief profile init --template       # a commented file to fill in
      debrief profile edit                  # $EDITOR, then a check
      debrief profile check
      debrief profile show --json | jq .criteria
      DEBRIEF_PROFILE=~/search-2026/profile.toml debrief profile show

    \b
    The file:
      must_haves = ["at least my current pay"]
      deal_breakers = ["no unpaid trial work"]
      [criteria]
      pay = 8                      # built-in criterion: weight 1 to 10
      growth = 6
      [criteria.four_day_week]     # your own: a weight and a description
      weight = 7
      description = "Whether I can work four days a week"
      [current]
      status = "employed"          # or "not_working", with savings_months = 6
      job = "Support engineer at a logistics firm"
      pay = "$68k"

    Built-in criteria: pay, growth, manager_team, stability, hours_flexibility,
    commute_remote, mission, title_level, benefits.

    Exit codes: 0 done, 2 no profile, an invalid one, or a path that cannot be used.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(show)


# -- the subcommands ---------------------------------------------------------------------------
@profile.command()
@click.option("--template", is_flag=True, help="Write a commented template to edit; ask nothing.")
@click.option("--force", is_flag=True, help="Replace an existing profile.")
@path_option
def init(template: bool, force: bool, path: Path | None) -> None:
    """Write your profile from a few questions, or a template.

    Asks how much each built-in criterion matters (1 to 10, 0 leaves it out), for your own
    criteria, must-haves and deal-breakers (separated by ;), and where you are now; then
    saves a commented TOML file. Nothing is written before the last answer, and an existing
    profile is never replaced without --force.

    \b
    Examples:
      debrief profile init
      debrief profile init --template && debrief profile edit
      debrief profile init --force --path ~/search-2026/profile.toml
    """
    from pipeline.files import write_text
    from pipeline.profile import parse_profile
    from pipeline.profile.write import template_text, to_toml

    target = _resolve(path)
    _check_writable(target, force=force)
    if template:
        text = template_text()
    else:
        answers = _ask()
        text = to_toml(answers)
        if parse_profile(text, str(target)) != answers:  # never save what reads back otherwise
            raise DebriefError("internal error: the profile would not read back as answered; "
                               "please report it.", exit_code=1)
    write_text(target, text)
    what = "a template" if template else "your profile"
    click.echo(f"Wrote {what} to {target}. See it with 'debrief profile show', change it with "
               "'debrief profile edit'.")


@profile.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print the profile as JSON, with its \"path\".")
@path_option
def show(as_json: bool, path: Path | None) -> None:
    """Show the profile and where it is.

    Criteria by weight with what they mean, must-haves, deal-breakers and where you are now;
    a table on a terminal, plain lines in a pipe.

    \b
    Examples:
      debrief profile show
      debrief profile show --json | jq '.criteria | keys'
    """
    from pipeline.profile import parse_profile, read_text

    target = _existing(_resolve(path))
    prof = parse_profile(read_text(target), str(target))
    if as_json:
        click.echo(json.dumps({**prof.model_dump(), "path": str(target)}, indent=2))
    elif sys.stdout.isatty():
        _show_rich(prof, target)
    else:
        _show_plain(prof, target)


@profile.command()
@path_option
def edit(path: Path | None) -> None:
    """Open the profile in your editor, then check it.

    The editor is $VISUAL or $EDITOR. A missing profile is first written from the template.

    \b
    Examples:
      debrief profile edit
      EDITOR=nano debrief profile edit --path ~/search-2026/profile.toml
    """
    from pipeline.files import write_text
    from pipeline.profile.write import template_text

    target = _resolve(path)
    if _kind(target) == "missing":
        _check_writable(target, force=False)
        write_text(target, template_text())
        click.echo(f"Created {target} from the template.", err=True)
    target = _existing(target)
    try:
        click.edit(filename=str(target))
    except click.ClickException as exc:
        raise DebriefError(f"{exc.message}; set EDITOR to your editor, e.g. EDITOR=nano.",
                           exit_code=1) from None
    _report(target, fix="run 'debrief profile edit' again to fix them")


@profile.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print the problems as a JSON list of {field, problem, fix} ([] when valid).")
@path_option
def check(as_json: bool, path: Path | None) -> None:
    """List every problem in the profile, in one pass.

    One problem per line: its field (e.g. criteria.pay.weight), what is wrong, and what to
    write instead; an unknown criterion name gets a "did you mean" for the built-in ones.

    \b
    Examples:
      debrief profile check
      debrief profile check --path ~/search-2026/profile.toml
      debrief profile check --json | jq -r '.[].field'

    Exit codes: 0 valid, 2 a problem (each printed on stdout) or no profile.
    """
    _report(_existing(_resolve(path)), fix="'debrief profile edit' opens the file",
            as_json=as_json)


# -- files ------------------------------------------------------------------------------------
def _resolve(path: Path | None) -> Path:
    from pipeline.home import profile_path

    return path.expanduser() if path is not None else profile_path()


def _kind(path: Path) -> str:
    """missing, file, dir or other; a path that cannot even be looked at is a one-line error."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        raise DebriefError(f"profile {path} cannot be used ({exc.strerror or exc}).") from None
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def _not_a_file(path: Path, kind: str) -> DebriefError:
    if kind == "dir":
        return DebriefError(f"{path} is a folder, not a profile; give a file such as "
                            f"--path {path / 'profile.toml'}.")
    return DebriefError(f"{path} is not a regular file; a profile is a small TOML file.")


def _existing(path: Path) -> Path:
    kind = _kind(path)
    if kind == "missing":
        raise DebriefError(f"no profile at {path}; write one with 'debrief profile init' "
                           "(a few questions) or 'debrief profile init --template'.")
    if kind != "file":
        raise _not_a_file(path, kind)
    return path


def _check_writable(path: Path, *, force: bool) -> None:
    """Fail before any question is asked, not after the last one."""
    kind = _kind(path)
    if kind in ("dir", "other"):
        raise _not_a_file(path, kind)
    if kind == "file" and not force:
        raise DebriefError(f"profile {path} already exists; change it with 'debrief profile "
                           "edit', or replace it with --force.")
    folder = path.parent
    while _kind(folder) == "missing" and folder.parent != folder:
        folder = folder.parent
    if _kind(folder) != "dir":
        raise DebriefError(f"cannot write {path}: {folder} is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DebriefError(f"cannot write {path}: {folder} is not writable.")


def _report(path: Path, *, fix: str, as_json: bool = False) -> None:
    from pipeline.profile import parse_profile, profile_problems, read_text

    text = read_text(path)
    found = profile_problems(text)
    if as_json:
        click.echo(json.dumps([p.to_json() for p in found], indent=2, ensure_ascii=False))
    else:
        for problem in found:
            click.echo(problem.line())
    if found:
        raise DebriefError(f"{_count(len(found), 'problem', 'problems')} in profile {path}; "
                           f"{fix}.")
    prof = parse_profile(text, str(path))
    if not as_json:
        click.echo(f"profile OK: {summary(prof)} in {path}")


def summary(prof: Profile) -> str:
    return ", ".join([_count(len(prof.criteria), "criterion", "criteria"),
                      _count(len(prof.must_haves), "must-have", "must-haves"),
                      _count(len(prof.deal_breakers), "deal-breaker", "deal-breakers")])


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# -- show -------------------------------------------------------------------------------------
def _ranked(prof: Profile) -> list[str]:
    return sorted(prof.criteria, key=lambda k: (-prof.criteria[k].weight, prof.label(k).lower()))


def _situation(prof: Profile) -> str:
    cur = prof.current
    if cur.status == "not_working":
        months = "" if cur.savings_months is None else f", savings for {cur.savings_months} months"
        return f"not working{months}"
    return "employed" + (f" as {cur.job}" if cur.job else "") + (f", pay {cur.pay}" if cur.pay
                                                                 else "")


def _show_plain(prof: Profile, path: Path) -> None:
    click.echo(f"Profile {path}")
    click.echo("Criteria, by weight:")
    for key in _ranked(prof):
        click.echo(f"  {prof.criteria[key].weight:>2}  {prof.label(key)} ({key}): "
                   f"{prof.description(key)}")
    for title, items in (("Must-haves", prof.must_haves), ("Deal-breakers", prof.deal_breakers)):
        click.echo(f"{title}:" + ("" if items else " none"))
        for item in items:
            click.echo(f"  - {item}")
    click.echo(f"Now: {_situation(prof)}")


def _show_rich(prof: Profile, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=False)
    table = Table(show_header=True, header_style="bold", box=None, title_justify="left")
    for col, justify in (("weight", "right"), ("criterion", "left"), ("what it means", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for key in _ranked(prof):
        table.add_row(str(prof.criteria[key].weight),
                      Text.assemble((prof.label(key), "bold"), f" ({key})"),
                      Text(prof.description(key)))
    console.print(table)
    for title, items, style in (("Must-haves", prof.must_haves, "green"),
                                ("Deal-breakers", prof.deal_breakers, "red")):
        console.print(Text.assemble((f"{title}:", f"bold {style}"), "" if items else " none"))
        for item in items:
            console.print(Text(f"  - {item}"))
    console.print(Text.assemble(("Now: ", "bold"), _situation(prof)))
    console.print(Text(f"Profile {path}", style="dim"))


# -- init's questions -------------------------------------------------------------------------
def _ask() -> Profile:
    from pipeline.profile import BUILTIN, Criterion, Profile, Situation
    from pipeline.profile.write import DEFAULT_WEIGHTS

    click.echo("A few questions about what matters to you in a job. Press Enter to take the "
               "[default]; nothing is saved before the last answer.\n")
    click.echo("How much does each of these matter, from 1 (a little) to 10 (it decides)? "
               "0 leaves it out.")
    criteria: dict[str, Criterion] = {}
    for key, builtin in BUILTIN.items():
        weight = click.prompt(f"  {builtin.label} ({builtin.description.lower()})",
                              default=DEFAULT_WEIGHTS.get(key, 5), type=click.IntRange(0, 10))
        if weight:
            criteria[key] = Criterion(weight=weight)

    click.echo("\nAnything else that matters to you, such as a four-day week or a visa?")
    question = "  Your own criterion in a few words (Enter: none)"
    while len(criteria) < 20:
        name = click.prompt(question, default="", show_default=False,
                            value_proc=lambda v: _criterion_name(v, criteria))
        if not name:
            break
        description = click.prompt(f"  What should your notes tell you about {name}?",
                                   value_proc=lambda v: _text(v, 300, required=True))
        weight = click.prompt(f"  How much does {name} matter (1-10)", default=5,
                              type=click.IntRange(1, 10))
        criteria[name] = Criterion(weight=weight, description=description)
        question = "  Another one (Enter: no more)"
    if not criteria:
        raise DebriefError("a profile needs at least one criterion; run 'debrief profile init' "
                           "again and give one a weight from 1 to 10.")

    click.echo("\nSeparate several with ; (or commas).")
    must = click.prompt("  Must-haves: what an offer must have (Enter: none)", default="",
                        show_default=False, value_proc=_items)
    breakers = click.prompt("  Deal-breakers: what rules an offer out (Enter: none)",
                            default="", show_default=False, value_proc=_items)

    click.echo("\nEvery offer is weighed against where you are now.")
    if click.confirm("  Do you have a job now?", default=True):
        job = click.prompt("  Your job now, e.g. 'Support engineer at Acme' (Enter: skip)",
                           default="", show_default=False, value_proc=lambda v: _text(v, 200))
        pay = click.prompt("  Your pay now, e.g. $95k or £42,000 (Enter: skip)", default="",
                           show_default=False, value_proc=lambda v: _text(v, 100))
        current = Situation(status="employed", job=job, pay=pay)
    else:
        months = click.prompt("  How many months could you live on your savings? (Enter: skip)",
                              default="", show_default=False, value_proc=_months)
        current = Situation(status="not_working", savings_months=months)
    return Profile(criteria=criteria, must_haves=must, deal_breakers=breakers, current=current)


def _valid_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise click.BadParameter("that is not valid UTF-8 text; please type it again.") from None
    return value


def _text(value: str, limit: int, *, required: bool = False) -> str | None:
    value = _valid_text(value).strip()
    if not value and required:
        raise click.BadParameter("please write a few words.")
    if len(value) > limit:
        raise click.BadParameter(f"at most {limit} characters, please ({len(value)} now).")
    return value or None


def _criterion_name(value: str, taken: dict[str, Any]) -> str:
    from pipeline.profile.model import KEY

    value = _valid_text(value).strip()
    if not value:
        return ""
    name = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
    if not KEY.match(name):
        raise click.BadParameter("a name starts with a letter and has at most 40 letters, "
                                 "digits or _ (e.g. four_day_week).")
    if name in taken:
        raise click.BadParameter(f"{name} is already one of your criteria; pick another name.")
    return name


def _items(value: str) -> list[str]:
    value = _valid_text(value)
    # "£42,000" stays one item: a comma between two digits does not separate
    parts = value.split(";") if ";" in value else re.split(r"(?<!\d),|,(?!\d)", value)
    items = [" ".join(p.split()) for p in parts]
    items = [i for i in items if i]
    for item in items:
        if not 3 <= len(item) <= 200:
            raise click.BadParameter(f"{item!r}: each one needs 3 to 200 characters.")
    if len(items) > 12:
        raise click.BadParameter(f"at most 12, please ({len(items)} now).")
    if len({i.lower() for i in items}) != len(items):
        raise click.BadParameter("one of them is listed twice.")
    return items


def _months(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,3}", value) or int(value) > 600:
        raise click.BadParameter("a whole number of months from 0 to 600, or Enter to skip.")
    return int(value)
