"""Hardening of one note's way in: surrogate escapes, duplicate keys, special files.

Regression tests for what the batch hardening found, and two experiments that found it:

  notes-surrogates  front matter with JSON-style \\uXXXX escapes of any code point, lone or
                    paired surrogates included (what json.dumps writes for an emoji), through
                    parse_notes: a note, or one clear line; never text that cannot be encoded
  special-files     `debrief reflect` on what is not a regular file (devices, FIFOs, sockets,
                    folders, symlinks to them, unreadable files): one line, exit 2, at once

Each experiment prints `hardening[PROFILE] NAME: N runs, F failures` and fails on any
failure. DEBRIEF_FUZZ=full runs 5,000 generated inputs instead of 60.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import Result
from conftest import NOTES_CLEAR, assert_one_line_error, describe, run_cli, time_limit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import DebriefError
from pipeline.notes import parse_notes
from pipeline.schema import Reflection

PROFILE = os.environ.get("DEBRIEF_FUZZ", "small")
N = {"small": 60, "full": 5000}[PROFILE]
HARDENING = settings(settings.get_profile("debrief"), max_examples=N,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture])
SUNNY = b'---\ncompany: "Sunny Cafe \\ud83d\\ude00"\nrole: Barista\n---\n' \
        b"- The manager was kind and clear about how the team grows people.\n" \
        b"- The pay is above my current job and the schedule is fixed.\n"


def report(name: str, counts: Counter, failures: list[str], seconds: float) -> None:
    runs = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"\nhardening[{PROFILE}] {name}: {runs} runs, {len(failures)} failures "
          f"in {seconds:.1f} s ({detail})")
    assert not failures, "\n".join(failures[:5])


def _encodes(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodes(k) and _encodes(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodes(v) for v in value)
    return True


# -- surrogates ----------------------------------------------------------------------------
def test_surrogate_pair_escapes_become_the_character() -> None:
    notes = parse_notes(SUNNY, "n.md")
    assert notes.meta.company == "Sunny Cafe \U0001f600"
    json.loads(notes.model_dump_json())  # PydanticSerializationError before


def test_lone_surrogates_become_the_replacement_character() -> None:
    data = (b'---\ncompany: "A \\ud83d B \\ude00 C \\ude00\\ud83d"\nrole: "\\udfff"\n'
            b'interviewers: ["Dana \\ud800", Lee]\nmood: "\\ud83d\\ude00 \\udc80"\n'
            b'"\\ud800key": x\n---\nThe team was kind and the pay is fine.\n')
    notes = parse_notes(data, "n.md")
    assert notes.meta.company == "A \ufffd B \ufffd C \ufffd\ufffd"
    assert notes.meta.role == "\ufffd"
    assert notes.meta.interviewers == ["Dana \ufffd", "Lee"]
    assert notes.meta.extra["mood"] == "\U0001f600 \ufffd"
    assert notes.meta.extra["\ufffdkey"] == "x"
    assert _encodes(notes.model_dump())


def test_reflect_on_a_note_with_surrogate_escapes(indexed_home: Path, tmp_path: Path) -> None:
    note = tmp_path / "sunny.md"
    note.write_bytes(SUNNY)
    result = run_cli("reflect", note, "--json")
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).notes.company == "Sunny Cafe \U0001f600"


def test_reflect_on_a_file_name_that_is_not_utf8(indexed_home: Path, tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9-interview.md")  # held by Python as a lone surrogate
    note = tmp_path / name
    note.write_bytes((NOTES_CLEAR / "keep-01.md").read_bytes())
    result = run_cli("reflect", note, "--json")
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).notes.path.endswith(
        "caf\\xe9-interview.md")


# the experiment: any code point as a JSON-style escape, in any place of the front matter
ESCAPE = st.one_of(
    st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}"),           # lone surrogates
    st.integers(0x10000, 0x10FFFF).map(                                  # pairs, as json.dumps
        lambda c: json.dumps(chr(c))[1:-1]),
    st.integers(0x20, 0xFFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF).map(
        lambda c: f"\\u{c:04x}"),
    st.sampled_from(["\\U0001F600", "\\x41", "\\N", "\\_", "\\L", "\\P", "\\0", "\\e"]),
    st.text(st.characters(whitelist_categories=["L", "N", "P", "S", "Zs"],
                          blacklist_characters='"\\'), max_size=5),
)
QUOTED = st.lists(ESCAPE, max_size=8).map(lambda parts: '"' + "".join(parts) + '"')
FIELD = st.sampled_from(["company", "role", "date", "round", "current_job", "location",
                         "mood", "interviewers"])


@st.composite
def surrogate_front_matter(draw: st.DrawFn) -> bytes:
    lines = []
    for key in draw(st.lists(st.one_of(FIELD, QUOTED), min_size=1, max_size=5, unique=True)):
        if draw(st.booleans()) and key == "interviewers":
            lines.append(f"{key}: [{', '.join(draw(st.lists(QUOTED, max_size=3)))}]")
        else:
            lines.append(f"{key}: {draw(QUOTED)}")
    body = draw(st.sampled_from(["The team was kind.", "- Pay: fine \U0001f600", "x"]))
    return ("---\n" + "\n".join(lines) + "\n---\n" + body + "\n").encode()


def test_experiment_notes_surrogates() -> None:
    counts: Counter = Counter()
    failures: list[str] = []
    start = time.monotonic()

    @HARDENING
    @given(data=surrogate_front_matter())
    def check(data: bytes) -> None:
        try:
            try:
                notes = parse_notes(data, "fuzz.md")
            except DebriefError as exc:
                assert exc.message.startswith("fuzz.md:") and "\n" not in exc.message
                assert _encodes(exc.message), exc.message
                counts["refused"] += 1
                return
            assert _encodes(notes.model_dump()), notes
            json.loads(notes.model_dump_json())
            counts["parsed"] += 1
        except Exception as exc:  # every failure is counted and shown
            failures.append(f"{data!r}: {type(exc).__name__}: {exc}")

    check()
    report("notes-surrogates", counts, failures, time.monotonic() - start)


# -- duplicate keys ------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "key", "line", "first"), [
    (b"---\ncompany: Acme\nrole: x\ncompany: Other\n---\nbody text\n", "company", 4, 2),
    (b"---\nCompany: Acme\ncompany: Other\n---\nbody text\n", "company", 3, 2),
    (b"<!-- from a template -->\n---\nrole: a\nrole: b\n---\nbody text\n", "role", 4, 3),
    (b"\xef\xbb\xbf---\r\nmood: a\r\nmood: b\r\n---\r\nbody text\r\n", "mood", 3, 2),
    (b"---\nmood:\n  a: 1\n  a: 2\n---\nbody text\n", "a", 4, 3),
])
def test_duplicate_keys_are_refused_naming_key_and_line(data: bytes, key: str, line: int,
                                                        first: int) -> None:
    with pytest.raises(DebriefError) as err:
        parse_notes(data, "n.md")
    msg = err.value.message
    assert msg.startswith("n.md: front matter gives"), msg
    assert f"'{key}' twice (line {line}, first on line {first})" in msg, msg


def test_a_merge_key_is_not_a_duplicate() -> None:
    notes = parse_notes(b"---\nbase: &b {x: 1}\nmore:\n  <<: *b\n  x: 2\ncompany: Acme\n---\n"
                        b"body text\n", "n.md")
    assert notes.meta.company == "Acme"


def test_duplicate_keys_in_reflect_are_one_line(indexed_home: Path, tmp_path: Path) -> None:
    note = tmp_path / "dup.md"
    note.write_bytes(b"---\ncompany: Acme\ncompany: Other\n---\nThe team was kind.\n")
    assert_one_line_error(run_cli("reflect", note), "'company' twice", "line 3")


# -- special files -------------------------------------------------------------------------
def _drop_file_permission_override() -> None:
    """In the child: root loses the capabilities that ignore file modes (prctl
    PR_CAPBSET_DROP of CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), so a mode-000 file is
    unreadable to it as to anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def unprivileged(args: list[str], env: dict[str, str], cwd: Path,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``args`` so that file modes apply (as root: without the DAC capabilities)."""
    pre = _drop_file_permission_override if os.geteuid() == 0 else None
    return subprocess.run(args, env=env, cwd=cwd, preexec_fn=pre, capture_output=True,
                          text=True, timeout=timeout)


def modes_apply(path: Path, env: dict[str, str]) -> bool:
    probe = unprivileged([sys.executable, "-c", f"open({str(path)!r}).read()"], env, path.parent)
    return probe.returncode != 0 and "PermissionError" in probe.stderr


def test_dev_zero_and_a_symlink_to_urandom_are_refused(tmp_path: Path) -> None:
    (tmp_path / "u.md").symlink_to("/dev/urandom")
    for target in (Path("/dev/zero"), tmp_path / "u.md"):
        t = time.monotonic()
        line = assert_one_line_error(run_cli("reflect", target), "character device",
                                     "not a notes file")
        assert str(target) in line
        assert time.monotonic() - t < 5


def test_a_fifo_is_refused_without_blocking(tmp_path: Path, cli_env: dict[str, str]) -> None:
    fifo = tmp_path / "notes.md"
    os.mkfifo(fifo)
    try:  # a real process: before, it waited forever for a writer
        proc = subprocess.run([sys.executable, "-m", "pipeline", "reflect", str(fifo)],
                              env=cli_env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("debrief reflect on a FIFO hung")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"Error: {fifo}: is a FIFO (named pipe), not a notes file; "
                                   "give a Markdown or text file.")


def test_a_mode_000_file_is_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    note = tmp_path / "locked.md"
    note.write_bytes((NOTES_CLEAR / "keep-01.md").read_bytes())
    note.chmod(0)
    if not modes_apply(note, cli_env):
        pytest.skip("file modes cannot be made to apply here")
    proc = unprivileged([sys.executable, "-m", "pipeline", "reflect", str(note)], cli_env,
                        tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"Error: {note}: cannot read (Permission denied).", \
        proc.stderr  # before: Click's "Usage: ... Try ... Path is not readable" block
    assert proc.stdout == ""


def _special_files(base: Path) -> dict[str, Path]:
    base.mkdir()
    made = {"char device /dev/zero": Path("/dev/zero"), "char device /dev/null": Path("/dev/null"),
            "char device /dev/urandom": Path("/dev/urandom"), "char device /dev/full":
            Path("/dev/full"), "folder": base}
    fifo = base / "pipe.md"
    os.mkfifo(fifo)
    made["fifo"] = fifo
    sock_path = base / "s.md"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    sock.close()
    made["socket"] = sock_path
    for name, target in list(made.items()):
        link = base / f"link-{len(made)}.md"
        link.symlink_to(target)
        made[f"symlink to {name}"] = link
    (base / "loop.md").symlink_to(base / "loop.md")
    made["symlink loop"] = base / "loop.md"
    (base / "dangling.md").symlink_to(base / "nowhere.md")
    made["dangling symlink"] = base / "dangling.md"
    return {k: v for k, v in made.items() if os.path.lexists(v)}


def test_experiment_special_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything that is not a regular file, three ways of naming it, and --json or not:
    one line, exit 2, within seconds; nothing is written."""
    counts: Counter = Counter()
    failures: list[str] = []
    start = time.monotonic()
    files = _special_files(tmp_path / "special")
    for kind, path in files.items():
        monkeypatch.chdir(path.parent if path.parent != Path("/") else tmp_path)
        for how in ("absolute", "relative", "dashdash"):
            arg = [str(path)] if how == "absolute" else (
                [f"./{path.name}"] if how == "relative" else ["--", path.name])
            for extra in ([], ["--json"]):
                argv = ["reflect", *extra, *arg]
                try:
                    with time_limit(20, argv):
                        result: Result = run_cli(*argv)
                    assert_one_line_error(result, exit_code=2)
                    counts[kind.split(" ")[0]] += 1
                except (AssertionError, TimeoutError) as exc:
                    failures.append(f"{kind} {argv}: {exc}"[:600])
    assert not [p for p in (tmp_path / "special").iterdir()
                if p.name.endswith((".tmp", ".json"))]
    report("special-files", counts, failures, time.monotonic() - start)


def test_special_files_are_refused_before_open(tmp_path: Path) -> None:
    """read_capped itself never blocks: a FIFO opened there is refused, not read."""
    from pipeline.files import read_capped

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with time_limit(5, "read_capped on a FIFO"), pytest.raises(OSError) as err:
        read_capped(fifo)
    assert "not a regular file" in str(err.value)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
