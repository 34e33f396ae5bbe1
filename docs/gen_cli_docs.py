"""Write the README's command synopsis and option tables from the Click commands themselves.

The README marks each generated region with a pair of comments; everything between them is
replaced, everything else is left alone:

    <!-- cli:synopsis -->  ...  <!-- /cli:synopsis -->        every command, one block
    <!-- cli:reflect -->   ...  <!-- /cli:reflect -->         one command's options
    <!-- cli:profile check --> ... <!-- /cli:profile check -->

Usage (from the checkout):
    .venv/bin/python docs/gen_cli_docs.py          # rewrite README.md's regions
    .venv/bin/python docs/gen_cli_docs.py --check  # exit 1 and name the regions that differ

tests/test_new_user.py runs the check, so a new or changed option fails the tests until the
README is regenerated.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REGION = re.compile(r"(<!-- cli:(?P<name>[a-z -]+) -->\n)(?P<body>.*?)(<!-- /cli:(?P=name) -->)",
                    re.S)
WIDTH = 92
REGENERATE = ".venv/bin/python docs/gen_cli_docs.py"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import click  # noqa: E402

from pipeline.cli import cli  # noqa: E402


def commands() -> list[tuple[str, click.Command]]:
    """Every command by its path ('reflect', 'eval', 'eval bless', 'profile check'), in the
    order the CLI adds them; a group that does nothing by itself is not listed."""
    out: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: str) -> None:
        if path and (not isinstance(cmd, click.Group) or _own_options(cmd)
                     or cmd.invoke_without_command and cmd.params):
            out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                if not sub.hidden:
                    walk(sub, f"{path} {name}".strip())

    walk(cli, "")
    return out


def _own_options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]


def _unset(value: object) -> bool:
    # Click 8.2+ marks "no default" with a sentinel; before, None
    return value is None or type(value).__name__ == "Sentinel"


def _metavar(p: click.Parameter) -> str:
    if p.metavar:
        return p.metavar
    t = p.type
    if isinstance(t, click.Choice):
        return "|".join(str(c) for c in t.choices)
    if isinstance(t, (click.IntRange, click.FloatRange)) or t in (click.INT, click.FLOAT):
        return "N"
    if isinstance(t, click.Path):
        return "DIR" if not t.file_okay else "FILE"
    return (p.name or "value").upper()


def _usage(p: click.Parameter) -> str:
    if isinstance(p, click.Argument):
        return _metavar(p)
    assert isinstance(p, click.Option)
    names = "/".join(sorted(p.opts, key=len))
    if p.is_flag:
        return names
    return f"{names} {_metavar(p)}" + (" ..." if p.multiple else "")


def synopsis_line(path: str, cmd: click.Command) -> str:
    words = [f"debrief {path}"]
    words += [_usage(p) for p in cmd.params if isinstance(p, click.Argument)]
    words += [f"[{_usage(p)}]" for p in _own_options(cmd)]
    if isinstance(cmd, click.Group) and cmd.commands:
        words.append("[" + "|".join(cmd.commands) + "]")
    lines, line = [], ""
    indent = " " * (len(words[0]) + 1)
    for word in words:
        if line and len(line) + 1 + len(word) > WIDTH:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


def synopsis() -> str:
    head = "debrief [--debug] [--version] [-h|--help] COMMAND ..."
    body = "\n".join(synopsis_line(path, cmd) for path, cmd in commands())
    return f"```text\n{head}\n{body}\n```\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def option_table(path: str, cmd: click.Command) -> str:
    rows = ["| option | environment | default | what it does |",
            "| --- | --- | --- | --- |"]
    for p in cmd.params:
        if isinstance(p, click.Argument):
            rows.append(f"| `{_usage(p)}` | | | (required) |")
            continue
        if not isinstance(p, click.Option) or p.hidden:
            continue
        env = p.envvar if isinstance(p.envvar, (list, tuple)) else [p.envvar] if p.envvar else []
        default = ""
        if p.show_default and not p.is_flag and not _unset(p.default):
            value = p.default
            default = f"`{value}`" if not isinstance(value, (list, tuple)) else ""
        rows.append(f"| `{_cell(_usage(p))}` | {', '.join(f'`{e}`' for e in env)} | {default} "
                    f"| {_cell(p.help or '')} |")
    summary = (cmd.get_short_help_str(limit=200) or "").rstrip(".")
    return f"`debrief {path}`: {summary}.\n\n" + "\n".join(rows) + "\n\n"


def regions() -> dict[str, str]:
    """Every region the README may carry, by name, with what belongs in it."""
    out = {"synopsis": synopsis()}
    for path, cmd in commands():
        out[path] = option_table(path, cmd)
    return out


def rewrite(text: str) -> tuple[str, list[str]]:
    """``text`` with every marked region regenerated, and the names of those that changed.
    A marked region that names no command is an error, not silently left as it was."""
    wanted = regions()
    changed: list[str] = []

    def fill(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in wanted:
            raise SystemExit(f"README.md marks a region 'cli:{name}', but there is no such "
                             f"command; known: {', '.join(wanted)}")
        if m.group("body") != wanted[name]:
            changed.append(name)
        return m.group(1) + wanted[name] + m.group(4)

    return REGION.sub(fill, text), changed


def missing(text: str) -> list[str]:
    """Commands with no region in the README."""
    present = {m.group("name") for m in REGION.finditer(text)}
    return [name for name in regions() if name not in present]


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    new, changed = rewrite(text)
    absent = missing(text)
    if "--check" in argv:
        for name in changed:
            print(f"README.md: the 'cli:{name}' region differs from the Click command; "
                  f"run {REGENERATE}")
        for name in absent:
            print(f"README.md: no 'cli:{name}' region; add <!-- cli:{name} --> and "
                  f"<!-- /cli:{name} --> lines, then run {REGENERATE}")
        return 1 if changed or absent else 0
    if new != text:
        README.write_text(new, encoding="utf-8")
    print(f"README.md: {len(changed)} region(s) rewritten"
          + (f" ({', '.join(changed)})" if changed else "")
          + (f"; no region for: {', '.join(absent)}" if absent else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
