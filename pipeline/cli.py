"""The `debrief` command: one root group; each command lives in pipeline/commands/."""

from __future__ import annotations

import os
import signal
import sys

import click

from pipeline import __version__
from pipeline.commands import (
    batch_cmd,
    compare_cmd,
    doctor_cmd,
    eval_cmd,
    index_cmd,
    profile_cmd,
    reflect_cmd,
)
from pipeline.errors import DebriefError
from pipeline.settings import load_config_file

INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, for every command


class UserError(click.ClickException):
    """A DebriefError on its way out: Click prints 'Error: MESSAGE' and exits with its code."""

    def __init__(self, error: DebriefError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code


class DebriefGroup(click.Group):
    """Maps the core's errors to Click's one-line errors and exit codes; anything unexpected
    becomes one line too, unless --debug asks for the traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # what follows the command name, for the config check (a help request is never
        # refused for a broken config file)
        ctx.meta["debrief.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DebriefError as exc:
            raise UserError(exc) from None
        except KeyboardInterrupt:
            # Click would print "Aborted!" and exit 1; the shell convention is 128 + SIGINT
            click.echo("debrief: interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get("debrief.debug") or os.environ.get("DEBRIEF_DEBUG"):
                raise
            raise UserError(DebriefError(
                f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
                exit_code=1,
            )) from None


@click.group(cls=DebriefGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="debrief")
@click.option("--debug", is_flag=True, envvar="DEBRIEF_DEBUG",
              help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Turn your post-interview notes into a keep-or-decline reflection.

    Every reason quotes your notes and cites an advice passage. Works offline by default;
    set OPENAI_API_KEY or OPENAI_BASE_URL to ask a real model.

    \b
    Quick start:
      debrief reflect notes/2026-11-20-acme.md
      debrief reflect notes.md --json > reflection.json
      debrief index --corpus ~/my-advice        # add your own advice documents

    \b
    Settings (highest wins): flags, DEBRIEF_* environment variables,
    $DEBRIEF_HOME/config.toml (or DEBRIEF_CONFIG), defaults.
    State lives in DEBRIEF_HOME (default: your user data folder).
    """
    ctx.meta["debrief.debug"] = debug
    if debug:
        os.environ["DEBRIEF_DEBUG"] = "1"
    try:
        cfg = load_config_file()
    except DebriefError:
        # doctor reports a broken config file as a FAIL line and goes on with its other
        # checks; a help request needs no config; every other command stops here
        args = ctx.meta.get("debrief.args", [])
        if ctx.invoked_subcommand != "doctor" and not {"-h", "--help"} & set(args):
            raise
        cfg = {}
    if "corpus" in cfg:  # the option's parameter is corpus_dirs; a string means one folder
        value = cfg.pop("corpus")
        cfg["corpus_dirs"] = [value] if isinstance(value, str) else list(value)
    if cfg:
        ctx.default_map = {name: cfg for name in cli.commands}


cli.add_command(reflect_cmd.reflect)
cli.add_command(index_cmd.index)
cli.add_command(eval_cmd.eval_, name="eval")
cli.add_command(batch_cmd.batch)
cli.add_command(compare_cmd.compare)
cli.add_command(doctor_cmd.doctor)
cli.add_command(profile_cmd.profile)


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def _second_interrupt_quits() -> None:
    """The first Ctrl-C stops the command as usual: it cleans up and exits 130. A model
    request in flight can hold that up until it ends (its client joins the worker thread
    that waits for the answer), so a second Ctrl-C quits at once, also with 130. Every file
    is written atomically, so nothing half-written is left; the next batch takes over its
    lock and sweeps its temp files."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # ignored (a background job) or someone else's: leave it alone
    pressed: list[int] = []

    def on_interrupt(signum: int, frame: object) -> None:
        if pressed:
            os.write(2, b"\ndebrief: interrupted\n")
            os._exit(INTERRUPTED)
        pressed.append(signum)
        asyncio = sys.modules.get("asyncio")  # no asyncio loaded: no loop running
        try:
            loop = asyncio.get_running_loop() if asyncio is not None else None
        except RuntimeError:
            loop = None
        if loop is not None:
            # inside a batch's event loop: stop it between two steps (as asyncio.run's own
            # handler would), never in the middle of a note's state write
            loop.call_soon_threadsafe(_raise_interrupt)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)


def main() -> None:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    _second_interrupt_quits()
    try:
        cli.main(prog_name="debrief")
    except KeyboardInterrupt:  # outside a command (while Click parses, or at exit)
        click.echo("debrief: interrupted", err=True)
        sys.exit(INTERRUPTED)
