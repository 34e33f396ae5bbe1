"""Hardening of `debrief batch` (and of `compare`/`reflect --out`): never over a file we did
not write, one odd note fails alone, a failed redo keeps the last good reflection, an
unreadable folder is a failure, storage faults are one line, Ctrl-C is 130.

Fault experiment (prints `hardening storage-faults: N runs, F failures`):

  storage-faults  damaged state files (zeroed pages, truncated, garbage, zero header),
                  a read-only state file and output folder, and a full disk under --out
                  (a small tmpfs when this machine lets us mount one, else RLIMIT_FSIZE):
                  `batch` and `batch --json` each give exit 2, one line naming the file and
                  what to do, the JSON summary still on stdout, the notes untouched and no
                  temp file left behind

Permission faults run in a real subprocess in which file modes apply (as root: without
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH); Ctrl-C is a real SIGINT to a real process.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest
from click.testing import Result
from conftest import NOTES_CLEAR, assert_one_line_error, describe, run_cli, tree

from pipeline.batch.state import MIGRATIONS, State
from pipeline.schema import Reflection

NOTES = {"a.md": "keep-01.md", "b.md": "decline-01.md", "c.md": "keep-03.md",
         "d.md": "decline-04.md"}
SUNNY = (b'---\ncompany: "Sunny Cafe \\ud83d\\ude00"\nrole: Barista\n---\n'
         b"- The manager was kind and clear about how the team grows people.\n"
         b"- The pay is above my current job and the schedule is fixed.\n")
NOT_OURS = "was not written by debrief"
STALE = "**stale**"


# -- helpers -------------------------------------------------------------------------------
def make_notes(folder: Path, names: dict[str, str] | None = None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, src in (names or NOTES).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NOTES_CLEAR / src, folder / rel)
    return sorted(names or NOTES)


def batch(*args: object) -> tuple[Result, dict]:
    result = run_cli("batch", *args, "--json")
    try:
        return result, json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(describe(result)) from None


def by_path(data: dict) -> dict[str, dict]:
    return {r["path"]: r for r in data["results"]}


def rows(out: Path) -> dict[str, sqlite3.Row]:
    con = sqlite3.connect(f"{(out / 'state.sqlite3').as_uri()}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return {r["path"]: r for r in con.execute("SELECT * FROM notes")}
    finally:
        con.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if p.name.endswith(".tmp")
                  or p.name.endswith("-journal") or p.name in ("batch.lock", "batch.pid"))


def touch_notes(folder: Path) -> None:
    for p in sorted(folder.glob("*.md")):
        p.write_bytes(p.read_bytes() + b"- One more line after the interview.\n")


def _drop_file_permission_override() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def debrief(args: list[object], env: dict[str, str], cwd: Path, *, modes: bool = False,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline ARGS` in a real process; with ``modes`` file modes apply to it."""
    pre = _drop_file_permission_override if modes and os.geteuid() == 0 else None
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], env=env,
                          cwd=cwd, preexec_fn=pre, capture_output=True, text=True,
                          timeout=timeout)


def modes_apply(path: Path, env: dict[str, str], *, write: bool = False) -> bool:
    """Whether the mode of ``path`` stops a `debrief` subprocess (listing a folder, or with
    ``write`` creating a file in it; opening a file for writing)."""
    pre = _drop_file_permission_override if os.geteuid() == 0 else None
    if path.is_dir():
        code = (f"open({str(path / '.probe')!r}, 'x')" if write
                else f"import os; os.listdir({str(path)!r})")
    else:
        code = f"open({str(path)!r}, 'r+b')"
    probe = subprocess.run([sys.executable, "-c", code], env=env, preexec_fn=pre,
                           capture_output=True, text=True, timeout=60)
    return probe.returncode != 0 and "PermissionError" in probe.stderr


def one_line(stderr: str, *needles: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), f"{n!r} not in {lines[0]!r}"
    return lines[0]


# -- 1. never over a file we did not write --------------------------------------------------
def test_out_inside_the_notes_folder_never_overwrites_a_note(indexed_home: Path,
                                                             tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"x.md": "keep-01.md", "sub/x.md": "decline-01.md",
                       "sub/digest.md": "keep-03.md"})
    before = tree(notes, skip=None)
    result, data = batch(notes, "--out", notes / "sub")
    # before: exit 0, sub/digest.md replaced by the digest, sub/x.md never looked at
    assert result.exit_code == 1, describe(result)
    res = by_path(data)
    assert res["x.md"]["status"] == "failed" and NOT_OURS in res["x.md"]["error"]
    assert res["sub/x.md"]["status"] == "processed"          # a note in the output folder
    assert res["sub/digest.md"]["status"] == "processed"     # is a note like any other
    assert NOT_OURS in data["error"] and "digest" in data["error"]
    after = tree(notes, skip=None)
    assert {k: after[k] for k in before} == before  # every note byte for byte, mtime too
    assert "failed x.md: its output" in result.stderr
    # the next run takes none of what it wrote for a note
    result, data = batch(notes, "--out", notes / "sub")
    assert sorted(by_path(data)) == ["sub/digest.md", "sub/x.md", "x.md"], data
    assert (data["processed"], data["skipped"], data["failed"]) == (0, 2, 1)
    # plain output: the digest problem is one line, exit 1
    result = run_cli("batch", notes, "--out", notes / "sub")
    assert result.exit_code == 1 and "No digest written." in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("Error: the digest")


def test_the_refusal_for_out_above_the_notes_no_longer_suggests_inside(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli("batch", tmp_path, "--out", tmp_path),
                                 "holds the notes folder", "pick a folder outside")
    assert "inside" not in line


def test_our_outputs_carry_a_mark_and_the_state_their_hashes(indexed_home: Path,
                                                            tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    result, _ = batch(notes)
    assert result.exit_code == 0, describe(result)
    out = notes / ".debrief"
    row = rows(out)["a.md"]
    assert row["md_sha256"] == sha(out / "a.md") and row["json_sha256"] == sha(out / "a.json")
    for name, kind in (("a.md", "reflection"), ("digest.md", "digest")):
        last = (out / name).read_text(encoding="utf-8").splitlines()[-1]
        assert last.startswith(f"<!-- debrief:{kind} sha256=") and last.endswith(" -->")
    assert (out / "a.md").read_text(encoding="utf-8").startswith("# ")
    assert leftovers(out) == []


def test_reflections_saved_inside_the_notes_folder_are_not_notes(indexed_home: Path,
                                                                tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    result = run_cli("reflect", notes / "a.md", "--out", notes / "a-reflection.md")
    assert result.exit_code == 0, describe(result)
    piped = run_cli("reflect", notes / "a.md")  # `debrief reflect a.md > piped.md`
    (notes / "piped.md").write_text(piped.stdout, encoding="utf-8")
    ranking = run_cli("compare", notes)
    (notes / "ranking.md").write_text(ranking.stdout, encoding="utf-8")
    result, data = batch(notes)
    # before: a-reflection.md, piped.md and ranking.md were reflected on as notes
    assert result.exit_code == 0, describe(result)
    assert sorted(by_path(data)) == ["a.md"], data


def test_reflect_out_never_writes_over_a_file_it_did_not_write(indexed_home: Path,
                                                               tmp_path: Path) -> None:
    note = tmp_path / "a.md"
    shutil.copyfile(NOTES_CLEAR / "keep-01.md", note)
    mine = tmp_path / "mine.md"
    mine.write_text("my own thoughts\n", encoding="utf-8")
    # before: exit 0 and mine.md replaced by the reflection
    assert_one_line_error(run_cli("reflect", note, "--out", mine), NOT_OURS, str(mine))
    assert mine.read_text(encoding="utf-8") == "my own thoughts\n"
    # what it wrote itself it may replace, Markdown or JSON, as long as nobody changed it
    for out in (tmp_path / "r.md", tmp_path / "r.json"):
        for _ in range(2):
            result = run_cli("reflect", note, "--out", out)
            assert result.exit_code == 0, describe(result)
    edited = tmp_path / "r.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("# ", "# My notes: ", 1),
                      encoding="utf-8")
    assert_one_line_error(run_cli("reflect", note, "--out", edited), "changed since")
    assert "My notes" in edited.read_text(encoding="utf-8")
    # a symlink or a FIFO at --out is not ours either, and nothing blocks
    (tmp_path / "link.md").symlink_to(mine)
    os.mkfifo(tmp_path / "fifo.md")
    for target, kind in ((tmp_path / "link.md", "symlink"), (tmp_path / "fifo.md", "FIFO")):
        assert_one_line_error(run_cli("reflect", note, "--out", target), kind, NOT_OURS)
    assert mine.read_text(encoding="utf-8") == "my own thoughts\n"


def test_compare_out_never_writes_over_a_file_it_did_not_write(indexed_home: Path,
                                                               tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md", "b.md": "decline-01.md"})
    report = tmp_path / "reports" / "ranking.md"
    report.parent.mkdir()
    report.write_text("last year's ranking, by hand\n", encoding="utf-8")
    assert_one_line_error(run_cli("compare", notes, "--out", report), NOT_OURS)
    assert not (notes / ".debrief").exists()  # refused before any work
    assert report.read_text(encoding="utf-8") == "last year's ranking, by hand\n"
    report.unlink()
    for _ in range(2):  # its own ranking, unchanged, it replaces
        result = run_cli("compare", notes, "--out", report)
        assert result.exit_code == 0, describe(result)
    assert report.read_text(encoding="utf-8") == result.stdout
    assert report.read_text(encoding="utf-8").splitlines()[-1].startswith(
        "<!-- debrief:ranking sha256=")


def test_an_edited_output_is_not_replaced_on_a_redo(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md", "b.md": "decline-01.md"})
    assert batch(notes)[0].exit_code == 0
    out = notes / ".debrief"
    (out / "a.md").write_text((out / "a.md").read_text(encoding="utf-8") + "My annotation.\n",
                              encoding="utf-8")
    json_before = (out / "a.json").read_bytes()
    result, data = batch(notes, "--force")
    assert result.exit_code == 1, describe(result)
    assert by_path(data)["b.md"]["status"] == "processed"
    assert "changed since" in by_path(data)["a.md"]["error"]
    assert (out / "a.md").read_text(encoding="utf-8").endswith("My annotation.\n")
    assert (out / "a.json").read_bytes() == json_before  # never one new output beside an old
    assert STALE in (out / "digest.md").read_text(encoding="utf-8")  # a.md's last good one


def test_outputs_without_a_state_row_are_still_ours(indexed_home: Path, tmp_path: Path) -> None:
    """After kill -9 between writing and recording, or a deleted state: the marks say the
    outputs are ours, so the run replaces them instead of failing every note."""
    notes = tmp_path / "n"
    rels = make_notes(notes)
    assert batch(notes)[0].exit_code == 0
    (notes / ".debrief" / "state.sqlite3").unlink()
    result, data = batch(notes)
    assert result.exit_code == 0, describe(result)
    assert data["processed"] == len(rels)


def test_outputs_from_before_the_mark_are_not_taken_for_notes(indexed_home: Path,
                                                              tmp_path: Path) -> None:
    """A visible --out inside the notes folder written by an older debrief: its unmarked
    reflections and digest stay outputs, not notes."""
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md", "b.md": "decline-01.md"})
    out = notes / "reflections"
    assert batch(notes, "--out", out)[0].exit_code == 0
    for p in (out / "a.md", out / "b.md", out / "digest.md"):
        text = p.read_text(encoding="utf-8")
        p.write_text(text[:text.rindex("<!-- debrief:")], encoding="utf-8")
    con = sqlite3.connect(out / "state.sqlite3")
    con.execute("UPDATE notes SET md_sha256 = NULL")
    con.execute("DELETE FROM notes WHERE path = 'b.md'")  # b's reflection no longer listed
    con.commit()
    con.close()
    result, data = batch(notes, "--out", out)
    assert result.exit_code == 0, describe(result)
    assert sorted(by_path(data)) == ["a.md", "b.md"], data


# -- 2. one odd note fails alone -----------------------------------------------------------
def test_surrogate_escapes_in_front_matter_do_not_stop_the_batch(indexed_home: Path,
                                                                tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    (notes / "sunny.md").write_bytes(SUNNY)
    result, data = batch(notes)
    # before: exit 1 "unexpected error: UnicodeEncodeError", no digest, on every rerun
    assert result.exit_code == 0, describe(result)
    assert data["processed"] == 2
    digest = (notes / ".debrief" / "digest.md").read_text(encoding="utf-8")
    assert "## Sunny Cafe \U0001f600" in digest
    assert batch(notes)[1]["skipped"] == 2


def test_a_file_name_that_is_not_utf8_fails_alone(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    shutil.copyfile(NOTES_CLEAR / "decline-01.md", notes / os.fsdecode(b"caf\xe9.md"))
    result, data = batch(notes)
    # before: exit 1 "unexpected error: UnicodeEncodeError", no digest, nothing recorded
    assert result.exit_code == 1, describe(result)
    res = by_path(data)
    assert res["a.md"]["status"] == "processed"
    assert res["caf\\xe9.md"]["status"] == "failed" and "not valid UTF-8" in \
        res["caf\\xe9.md"]["error"]
    digest = (notes / ".debrief" / "digest.md").read_text(encoding="utf-8")
    assert "- `caf\\xe9.md`: its name is not valid UTF-8 text; rename it" in digest


def test_duplicate_keys_fail_that_note_only(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    (notes / "dup.md").write_bytes(b"---\ncompany: Acme\ncompany: Other\n---\nIt went well.\n")
    result, data = batch(notes)
    assert result.exit_code == 1, describe(result)
    assert by_path(data)["dup.md"]["error"] == \
        "front matter gives 'company' twice (line 3, first on line 2); keep one of them."
    assert by_path(data)["a.md"]["status"] == "processed"


def test_a_state_value_that_cannot_be_encoded_is_cleaned(tmp_path: Path) -> None:
    state = State(tmp_path / "state.sqlite3")
    try:
        # before: UnicodeEncodeError out of save, outside any note's handling
        state.save(path="x.md", status="failed", error="bad \ud83d", company="A \ud83d\ude00")
        row = state.rows()["x.md"]
        assert (row["company"], row["error"]) == ("A \U0001f600", "bad \ufffd")
    finally:
        state.close()


# -- 3. a failed redo keeps the last good reflection ----------------------------------------
def test_a_night_with_the_model_server_down_keeps_the_reflections(
        indexed_home: Path, tmp_path: Path, unused_port: int) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md", "b.md": "decline-01.md"})
    assert batch(notes)[0].exit_code == 0
    out = notes / ".debrief"
    good = {rel: dict(r) for rel, r in rows(out).items()}
    down = ["--provider", "openai", "--base-url", f"http://127.0.0.1:{unused_port}/v1",
            "--model", "m", "--max-retries", "0", "--timeout", "2"]
    result, data = batch(notes, *down)
    assert result.exit_code == 1 and data["failed"] == 2, describe(result)
    digest = (out / "digest.md").read_text(encoding="utf-8")
    # before: "No reflections yet." and both notes only under Failed
    assert "No reflections yet." not in digest
    assert "2 reflection(s) from 2 companies (2 stale" in digest
    for rel in ("a.md", "b.md"):
        line = next(ln for ln in digest.splitlines() if f"[{rel}](<{rel}>)" in ln)
        assert STALE in line and "cannot reach the model server" in line
    for rel, row in rows(out).items():
        assert row["status"] == "failed" and "cannot reach" in row["error"]
        for col in ("out_md", "out_json", "md_sha256", "json_sha256", "decision",
                    "confidence", "next_step", "ok_at"):
            assert row[col] == good[rel][col], col
    result = run_cli("compare", notes, "--json", *down)
    # before: "No reflections to rank", exit 1
    assert result.exit_code == 1, describe(result)
    ranking = json.loads(result.stdout)
    assert len(ranking["processes"]) == 2
    assert all("cannot reach the model server" in p["stale"] for p in ranking["processes"])
    assert [f["path"] for f in ranking["failed"]] == ["a.md", "b.md"]
    assert all("stale" in f["error"] for f in ranking["failed"])
    md = run_cli("compare", notes, *down).stdout
    assert "(stale: its redo failed, see Failed)" in md
    # the server is back: fresh reflections, nothing stale
    result, data = batch(notes)
    assert result.exit_code == 0 and data["processed"] == 2, describe(result)
    assert STALE not in (out / "digest.md").read_text(encoding="utf-8")


def test_a_note_edited_into_garbage_keeps_its_place_and_last_reflection(
        indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md", "b.md": "decline-01.md"})
    assert batch(notes)[0].exit_code == 0
    (notes / "a.md").write_bytes(b"")
    result, data = batch(notes)
    assert result.exit_code == 1
    digest = (notes / ".debrief" / "digest.md").read_text(encoding="utf-8")
    assert "## Lakemont Children's Hospital" in digest  # the company of its last reflection
    assert "the notes file is empty" in digest and STALE in digest


# -- 4. an unreadable folder is a failure, not an empty one ---------------------------------
def test_an_unreadable_subfolder_is_a_failure_and_keeps_its_notes(
        indexed_home: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md", "sub/b.md": "decline-01.md"})
    assert batch(notes)[0].exit_code == 0
    out = notes / ".debrief"
    (notes / "sub").chmod(0)
    try:
        if not modes_apply(notes / "sub", cli_env):
            pytest.skip("file modes cannot be made to apply here")
        proc = debrief(["batch", notes, "--json"], cli_env, tmp_path, modes=True)
        # before: exit 0, sub/b.md dropped from the state, the digest and compare
        assert proc.returncode == 1, proc.stderr
        res = by_path(json.loads(proc.stdout))
        assert res["sub/"]["status"] == "failed"
        assert "cannot read this folder (Permission denied)" in res["sub/"]["error"]
        assert "failed sub/: cannot read this folder" in proc.stderr
        assert sorted(rows(out)) == ["a.md", "sub/b.md"]
        digest = (out / "digest.md").read_text(encoding="utf-8")
        assert "## Glowroot Skincare" in digest and "- `sub/`: cannot read" in digest
        proc = debrief(["compare", notes, "--json"], cli_env, tmp_path, modes=True)
        assert proc.returncode == 1, proc.stderr
        companies = {p["company"] for p in json.loads(proc.stdout)["processes"]}
        assert "Glowroot Skincare" in companies
    finally:
        (notes / "sub").chmod(0o755)


def test_an_unreadable_notes_folder_is_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    notes.chmod(0o300)  # can enter and write, cannot list
    try:
        if not modes_apply(notes, cli_env):
            pytest.skip("file modes cannot be made to apply here")
        proc = debrief(["batch", notes, "--out", tmp_path / "out"], cli_env, tmp_path,
                       modes=True)
        assert proc.returncode == 2, proc.stderr
        one_line(proc.stderr, "cannot read the notes folder", "Permission denied")
    finally:
        notes.chmod(0o755)


# -- 6. storage faults ---------------------------------------------------------------------
def _zero_page(db: Path, page_no: int) -> None:
    data = bytearray(db.read_bytes())
    size = int.from_bytes(data[16:18], "big") or 65536
    data[page_no * size:(page_no + 1) * size] = bytes(size)
    db.write_bytes(bytes(data))


def test_a_state_with_zeroed_pages_is_one_line(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes)
    assert batch(notes)[0].exit_code == 0
    db = notes / ".debrief" / "state.sqlite3"
    _zero_page(db, 1)
    touch_notes(notes)
    # before: "unexpected error: DatabaseError: database disk image is malformed", exit 1
    result, data = batch(notes)
    assert result.exit_code == 2, describe(result)
    line = one_line(result.stderr, str(db), "damaged", "delete it to start over")
    assert data["error"] == line[len("Error: "):]
    assert leftovers(notes / ".debrief") == []
    db.unlink()
    result, data = batch(notes)
    assert result.exit_code == 0 and data["processed"] == 4, describe(result)


def test_a_read_only_state_is_one_line(indexed_home: Path, tmp_path: Path,
                                       cli_env: dict[str, str]) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    assert batch(notes)[0].exit_code == 0
    db = notes / ".debrief" / "state.sqlite3"
    db.chmod(0o444)
    if not modes_apply(db, cli_env):
        pytest.skip("file modes cannot be made to apply here")
    touch_notes(notes)
    before = (notes / ".debrief" / "a.json").read_bytes()
    for extra in ([], ["--json"]):
        proc = debrief(["batch", notes, *extra], cli_env, tmp_path, modes=True)
        # before: "unexpected error: OperationalError: attempt to write a readonly database"
        assert proc.returncode == 2, proc.stderr
        one_line(proc.stderr, str(db), "cannot be written", "writable")
        if extra:
            assert "readonly" in json.loads(proc.stdout)["error"]
    assert (notes / ".debrief" / "a.json").read_bytes() == before  # stopped before the work


@contextlib.contextmanager
def small_disk(where: Path, kib: int = 1024) -> Iterator[bool]:
    """A tmpfs of ``kib`` KiB at ``where`` when this process may mount one; else yields
    False (the caller falls back to RLIMIT_FSIZE)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs",
                              str(where)], capture_output=True).returncode == 0 \
        if shutil.which("mount") else False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], check=True)


def fill(disk: Path, leave_kib: int) -> None:
    """Fill ``disk`` with one file until ``leave_kib`` KiB are free (0: to the last byte)."""
    filler = disk / "filler"
    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
    todo = shutil.disk_usage(disk).free - leave_kib * 1024
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            while leave_kib == 0 or todo >= size:
                try:
                    todo -= os.write(fd, b"\0" * size)
                except OSError:
                    break
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsize_limit(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_under_out_is_one_line_and_the_rerun_completes(
        indexed_home: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    notes = tmp_path / "n"
    make_notes(notes)
    before = tree(notes, skip=None)
    with small_disk(tmp_path / "disk") as mounted:
        out = tmp_path / "disk" / "out"
        if not mounted:  # no mount here: a file size limit gives the writes EFBIG instead
            proc = subprocess.run([sys.executable, "-m", "pipeline", "batch", str(notes),
                                   "--out", str(out), "--json"], env=cli_env, cwd=tmp_path,
                                  preexec_fn=lambda: _fsize_limit(3000), capture_output=True,
                                  text=True, timeout=300)
            assert proc.returncode == 2, proc.stderr
            one_line(proc.stderr, str(out), "run again")
            assert json.loads(proc.stdout)["error"]
            result, data = batch(notes, "--out", out)
            assert result.exit_code == 0 and data["processed"] == 4, describe(result)
            return
        assert batch(notes, "--out", out)[0].exit_code == 0
        touch_notes(notes)
        edited = tree(notes, skip=None)
        fill(tmp_path / "disk", 0)
        result, data = batch(notes, "--out", out)
        assert result.exit_code == 2, describe(result)
        one_line(result.stderr, str(out), "No space left on device", "the disk is full",
                 "free some space")
        assert "disk is full" in data["error"]
        fill(tmp_path / "disk", 4)  # room for batch.pid, none for the state's journal
        result, data = batch(notes, "--out", out)
        # before: "unexpected error: OperationalError: database or disk is full", exit 1
        assert result.exit_code == 2, describe(result)
        one_line(result.stderr, str(out / "state.sqlite3"), "database or disk is full",
                 "free some space")
        fill(tmp_path / "disk", 12)  # room for the pid and the state, not for a reflection
        result, data = batch(notes, "--out", out)
        assert result.exit_code == 2, describe(result)
        one_line(result.stderr, "the disk is full")
        assert data["failed"] >= 1 and all(r["error"] for r in data["results"]
                                           if r["status"] == "failed")
        (tmp_path / "disk" / "filler").unlink()
        result, data = batch(notes, "--out", out)
        assert result.exit_code == 0, describe(result)
        assert data["processed"] + data["skipped"] == 4 and data["processed"] >= 1
        assert leftovers(out) == []
        for rel in ("a", "b", "c", "d"):
            r = Reflection.model_validate_json((out / f"{rel}.json").read_bytes())
            assert r.notes.sha256 == sha(notes / f"{rel}.md")
    after = tree(notes, skip=None)
    assert after == edited and set(before) == set(after)


def test_doctor_checks_the_state_tables_and_columns(debrief_env: Path, tmp_path: Path) -> None:
    db = tmp_path / "out" / "state.sqlite3"
    db.parent.mkdir()

    def state_check(*sql: str) -> dict:
        db.unlink(missing_ok=True)
        con = sqlite3.connect(db)
        for stmt in sql:
            con.execute(stmt)
        con.commit()
        con.close()
        result = run_cli("doctor", "--json", "--state-dir", db.parent)
        return next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "batch state")

    fmt = len(MIGRATIONS)
    # before: "integrity ok" for all of these
    check = state_check("CREATE TABLE notes (path TEXT PRIMARY KEY, status TEXT NOT NULL)",
                        f"PRAGMA user_version = {fmt}")
    assert check["status"] == "fail" and "lacks sha256" in check["detail"]
    check = state_check("CREATE TABLE other (x)", f"PRAGMA user_version = {fmt}")
    assert check["status"] == "fail" and "no notes table" in check["detail"]
    check = state_check("CREATE TABLE notes (x)", f"PRAGMA user_version = {fmt + 5}")
    assert check["status"] == "fail" and check["hint"] == "upgrade debrief."
    db.unlink()
    state = State(db)  # a real, current one
    state.close()
    result = run_cli("doctor", "--json", "--state-dir", db.parent)
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "batch state")
    assert check["status"] == "ok" and f"format {fmt}" in check["detail"]


def test_a_format_1_state_is_migrated_and_nothing_is_redone(indexed_home: Path,
                                                            tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes)
    assert batch(notes)[0].exit_code == 0
    db = notes / ".debrief" / "state.sqlite3"
    con = sqlite3.connect(db)
    for col in ("md_sha256", "json_sha256", "ok_at"):
        con.execute(f"ALTER TABLE notes DROP COLUMN {col}")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    result, data = batch(notes)
    assert result.exit_code == 0 and data["skipped"] == 4, describe(result)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    con.close()


# -- 7. the lock, doctor, Ctrl-C ------------------------------------------------------------
def test_the_lock_file_exists_only_while_a_batch_runs(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "n"
    make_notes(notes, {"a.md": "keep-01.md"})
    out = notes / ".debrief"
    assert batch(notes)[0].exit_code == 0
    assert leftovers(out) == []  # before: batch.lock stayed
    (notes / "bad.md").write_bytes(b"")
    assert batch(notes)[0].exit_code == 1
    assert leftovers(out) == []
    # someone else's lock is never removed
    lock = filelock.FileLock(str(out / "batch.lock"), blocking=False)
    lock.acquire()
    try:
        assert_one_line_error(run_cli("batch", notes), "already running")
        assert (out / "batch.lock").exists()
    finally:
        lock.release()
    assert batch(notes)[0].exit_code == 1 and leftovers(out) == []


def test_doctor_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "not-yet" / "home"
    monkeypatch.setenv("DEBRIEF_HOME", str(home))
    notes = tmp_path / "notes"
    notes.mkdir()
    result = run_cli("doctor", "--json", "--notes", notes)
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "home")
    # before: DEBRIEF_HOME (and its parent) created, empty
    assert check["status"] == "ok" and "does not exist yet" in check["detail"]
    assert not (tmp_path / "not-yet").exists()
    assert list(notes.iterdir()) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(args: list[object], env: dict[str, str], cwd: Path, wait_for: str | None,
               listener: socket.socket | None = None) -> subprocess.CompletedProcess[str]:
    """Start debrief, wait until it is busy (a line on stderr, or a connection to a model
    server that never answers), then press Ctrl-C: a real SIGINT."""
    # As a terminal's foreground job gets it: SIGINT at its default. Run from a background
    # job (`cmd &` in a script), pytest and its children inherit SIGINT ignored, and debrief
    # rightly leaves an ignored SIGINT alone.
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    seen = ""
    if wait_for:
        deadline = time.monotonic() + 120
        while wait_for not in seen:
            assert proc.poll() is None, f"ended before the interrupt: {seen}"
            assert time.monotonic() < deadline, f"never saw {wait_for!r}: {seen}"
            seen += proc.stderr.readline()
    if listener is not None:
        listener.settimeout(120)
        conn, _ = listener.accept()  # it is waiting for the model's answer now
        time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a request in flight holds the first one up
        proc.send_signal(signal.SIGINT)  # the second quits at once
        out, err = proc.communicate(timeout=30)
    if listener is not None:
        conn.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, seen + err)


@pytest.mark.slow  # make test-quick leaves it out (README, Development)
def test_ctrl_c_exits_130(indexed_home: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    notes = tmp_path / "n"
    copies = 4
    for i in range(copies):
        make_notes(notes, {f"{i}-{k}": v for k, v in NOTES.items()})
    got = _interrupt(["batch", notes], cli_env, tmp_path, wait_for="reflected ")
    # before: exit 1 and "Aborted!"
    assert got.returncode == 130, got.stderr
    assert got.stderr.rstrip().endswith("debrief: interrupted") and "Aborted" not in got.stderr
    assert "Traceback" not in got.stderr
    out = notes / ".debrief"
    assert leftovers(out) == []
    result, data = batch(notes)
    assert result.exit_code == 0, describe(result)
    assert data["processed"] + data["skipped"] == copies * len(NOTES)
    assert data["skipped"] >= 1
    with socket.socket() as silent:  # a model server that takes the request, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        got = _interrupt(["reflect", notes / "0-a.md", "--provider", "openai", "--base-url",
                          url, "--model", "m", "--timeout", "100"], cli_env, tmp_path,
                         wait_for=None, listener=silent)
    assert got.returncode == 130, got.stderr
    assert got.stderr.rstrip().endswith("debrief: interrupted"), got.stderr


# -- the storage-faults experiment -----------------------------------------------------------
def _damage(kind: str, db: Path) -> None:
    data = db.read_bytes()
    if kind.startswith("zero page "):
        _zero_page(db, int(kind.split()[-1]))
    elif kind == "truncated":
        db.write_bytes(data[:len(data) // 2 + 100])
    elif kind == "garbage":
        db.write_bytes(b"SQLite format 3\x00" + b"\xff" * (len(data) - 16))
    elif kind == "zero header":
        db.write_bytes(bytes(100) + data[100:])
    elif kind == "not sqlite":
        db.write_bytes(b"these are not the notes you are looking for\n" * 50)


@pytest.mark.slow  # make test-quick leaves it out (README, Development)
def test_experiment_storage_faults(indexed_home: Path, tmp_path: Path,
                                   cli_env: dict[str, str]) -> None:
    counts: Counter = Counter()
    failures: list[str] = []
    start = time.monotonic()
    base = tmp_path / "base"
    make_notes(base)
    assert batch(base)[0].exit_code == 0
    pages = (base / ".debrief" / "state.sqlite3").stat().st_size // 4096
    kinds = [f"zero page {p}" for p in range(pages)] + [
        "truncated", "garbage", "zero header", "not sqlite", "read-only state",
        "read-only out folder", "full disk", "full disk for the state"]
    for i, kind in enumerate(kinds):
        for extra in ([], ["--json"], ["--dry-run"]):
            if kind.startswith(("read-only", "full")) and extra == ["--dry-run"]:
                continue  # a dry run writes nothing
            notes = tmp_path / f"run{i}{len(extra)}{extra[:1]}".replace("'", "")
            shutil.copytree(base, notes)
            out = notes / ".debrief"
            touch_notes(notes)
            edited = tree(notes)
            try:
                with contextlib.ExitStack() as stack:
                    modes = kind.startswith("read-only")
                    if kind == "read-only state":
                        (out / "state.sqlite3").chmod(0o444)
                    elif kind == "read-only out folder":
                        out.chmod(0o555)
                        stack.callback(out.chmod, 0o755)
                    elif kind.startswith("full"):
                        mounted = stack.enter_context(small_disk(tmp_path / f"disk{i}{len(extra)}"))
                        if not mounted:
                            counts["skipped: cannot mount"] += 1
                            continue
                        disk = tmp_path / f"disk{i}{len(extra)}"
                        shutil.copytree(out, disk / "out")
                        out = disk / "out"
                        fill(disk, 4 if kind.endswith("state") else 0)
                    else:
                        _damage(kind, out / "state.sqlite3")
                    if modes and not modes_apply(out / "state.sqlite3" if "state" in kind
                                                 else out, cli_env, write=True):
                        counts["skipped: modes do not apply"] += 1
                        continue
                    args = ["batch", notes, "--out", out, *extra]
                    proc = debrief(args, cli_env, tmp_path, modes=modes)
                    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr}"
                    line = one_line(proc.stderr, "run again" if "full" in kind else "")
                    assert str(out) in line, line
                    if extra == ["--json"]:
                        assert json.loads(proc.stdout)["error"] == line[len("Error: "):]
                    assert tree(notes) == edited
                    assert leftovers(out) == [], leftovers(out)
                counts[kind.split(" ")[0] if kind.startswith("zero page") else kind] += 1
            except (AssertionError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                failures.append(f"{kind} {extra}: {exc}"[:800])
    report = sum(v for k, v in counts.items() if not k.startswith("skipped"))
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"\nhardening storage-faults: {report} runs, {len(failures)} failures in "
          f"{time.monotonic() - start:.1f} s ({detail})")
    assert not failures, "\n".join(failures[:5])
