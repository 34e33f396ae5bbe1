"""`debrief batch`: incremental runs, crash safety, the lock, retries and the digest.

The eight-note folder is reflected on once per module (offline engine) and each test works
on a copy of the result; model traffic goes to tests/fake_openai.py on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import filelock
import pytest
from click.testing import Result
from conftest import (
    LAKEMONT_ROUND_1_TEXT,
    NOTES_CLEAR,
    BuiltIndex,
    assert_one_line_error,
    describe,
    private_indexed_home,
    run_cli,
    tree,
)
from fake_openai import FINGERPRINT, FakeOpenAI

from pipeline.batch.layout import output_names
from pipeline.batch.plan import Identity, due_reason
from pipeline.index.peek import peek_fingerprint
from pipeline.schema import Reflection

FAKE = Path(__file__).resolve().parent / "fake_openai.py"
MODEL = "fake-model"
RESULT_KEYS = {"path", "status", "decision", "confidence", "seconds", "error"}

GENERATED = {
    "2026/2026-05-30-lakemont-round-1.md": LAKEMONT_ROUND_1_TEXT,
    "2026/2026-04-18-corvid-labs.txt": """Corvid Labs, backend engineer, second round.
The team lead answered every question about on-call openly and the rotation is one week in six.
They showed me the promotion rubric and how two people on the team moved up last year.
The offer range is ten percent above what I make now.
I explained the caching design clearly and they asked good follow-up questions.
""",
    "archive/harbor-and-pine.md": """---
company: Harbor & Pine Bakery
role: Pastry lead
date: 2026-02-11
---
They want a full unpaid trial week before making any offer.
The owner talked over me and dismissed my questions about overtime.
The hourly pay is below what I earn at my current bakery.
Two of the staff said people leave within a few months.
""",
    "archive/2026-01-20-northgate-logistics.md": """---
company: Northgate Logistics
date: 2026-01-20
current_pay: 70k
---
The operations manager was warm and specific about the first ninety days.
The posted salary of 82k was confirmed in writing by the recruiter.
The warehouse floor looked safe, clean and well organised.
They asked me to send a short plan for the night shift handover.
""",
}
COPIED = ["keep-01.md", "decline-01.md", "keep-03.md", "decline-04.md"]
# notes without a front-matter date get a fixed file date, so the digest order is known
FILE_DATES = {"decline-04.md": "2026-01-05", "2026/2026-04-18-corvid-labs.txt": "2026-04-18"}
COMPANY_ORDER = ["Ashgrove Public Library", "Lakemont Children's Hospital", "Corvid Labs",
                 "Glowroot Skincare", "Harbor & Pine Bakery", "Northgate Logistics",
                 "Decline 04"]


def make_notes(folder: Path, names: list[str] | None = None) -> list[str]:
    """The eight-note folder (or the named subset of it); returns the relative paths."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name in COPIED:
        if names is None or name in names:
            shutil.copyfile(NOTES_CLEAR / name, folder / name)
            made.append(name)
    for rel, text in GENERATED.items():
        if names is None or rel in names:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
            made.append(rel)
    for rel, day in FILE_DATES.items():
        if (folder / rel).exists():
            t = datetime.fromisoformat(f"{day}T12:00:00").timestamp()
            os.utime(folder / rel, (t, t))
    return sorted(made)


def batch(*args: object) -> tuple[Result, dict]:
    result = run_cli("batch", *args, "--json")
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(describe(result)) from None
    return result, data


def by_path(data: dict) -> dict[str, dict]:
    return {r["path"]: r for r in data["results"]}


def out_paths(rel: str) -> tuple[str, str]:
    stem = str(PurePosixPath(rel).with_suffix(""))
    return f"{stem}.md", f"{stem}.json"


def state_rows(out: Path) -> dict[str, sqlite3.Row]:
    con = sqlite3.connect(f"{(out / 'state.sqlite3').as_uri()}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        return {r["path"]: r for r in con.execute("SELECT * FROM notes")}
    finally:
        con.close()


# -- one real run of the eight notes, shared --------------------------------------------------
@dataclass
class FirstRun:
    notes: Path
    rels: list[str]
    before: dict[str, str]
    result: Result
    data: dict


@pytest.fixture(scope="module")
def first_run(built_index: BuiltIndex, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    base = tmp_path_factory.mktemp("batch-first-run")
    notes = base / "notes"
    rels = make_notes(notes)
    before = tree(notes)
    with private_indexed_home(base, built_index):
        result, data = batch(notes)
    return FirstRun(notes, rels, before, result, data)


@pytest.fixture
def copied(first_run: FirstRun, indexed_home: Path, tmp_path: Path) -> Path:
    """A copy of the folder after the first run (notes, outputs, state), mtimes kept."""
    dest = tmp_path / "notes"
    shutil.copytree(first_run.notes, dest, symlinks=True)
    return dest


def test_first_run_reflects_on_every_note(first_run: FirstRun) -> None:
    assert first_run.result.exit_code == 0, describe(first_run.result)
    data = first_run.data
    assert len(first_run.rels) == 8
    assert (data["processed"], data["skipped"], data["failed"]) == (8, 0, 0)
    assert sorted(by_path(data)) == first_run.rels
    out = first_run.notes / ".debrief"
    for rel in first_run.rels:
        md, js = out_paths(rel)
        r = Reflection.model_validate_json((out / js).read_text(encoding="utf-8"))
        assert r.notes.path == rel and r.engine == "offline"
        assert by_path(data)[rel]["decision"] == r.decision
        assert (out / md).read_text(encoding="utf-8").startswith(f"# {r.notes.company}")
    # the layout is mirrored, and the user's files are exactly as they were
    assert (out / "2026" / "2026-04-18-corvid-labs.md").is_file()
    assert (out / "archive" / "harbor-and-pine.json").is_file()
    assert tree(first_run.notes) == first_run.before
    assert {p.name for p in first_run.notes.iterdir()} - {".debrief"} == \
        {"keep-01.md", "decline-01.md", "keep-03.md", "decline-04.md", "2026", "archive"}
    assert not (out / "batch.pid").exists()
    rows = state_rows(out)
    assert {r["status"] for r in rows.values()} == {"ok"} and len(rows) == 8


def test_json_summary_shape(first_run: FirstRun) -> None:
    data = first_run.data
    assert set(data) == {"processed", "skipped", "failed", "seconds", "results"}
    assert all(type(data[k]) is int for k in ("processed", "skipped", "failed"))
    assert isinstance(data["seconds"], float) and data["seconds"] > 0
    for r in data["results"]:
        assert set(r) == RESULT_KEYS
        assert r["status"] == "processed" and r["error"] is None
        assert r["decision"] in ("keep", "decline") and 0 <= r["confidence"] <= 1
        assert r["seconds"] > 0


def test_rerun_is_lazy_and_an_edit_redoes_one(copied: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.batch import run as batch_run
    from pipeline.index import embedding

    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("a run with nothing to do opened the model, index or provider")

    with monkeypatch.context() as mp:
        for mod, name in ((batch_run, "make_provider"), (batch_run, "open_index"),
                          (embedding, "get_embedder")):
            mp.setattr(mod, name, forbidden)
        result, data = batch(copied)
    assert result.exit_code == 0, describe(result)
    assert (data["processed"], data["skipped"], data["failed"]) == (0, 8, 0)
    assert by_path(data)["keep-01.md"]["decision"] in ("keep", "decline")  # from the state

    before = tree(copied)
    note = copied / "archive" / "harbor-and-pine.md"
    note.write_text(note.read_text(encoding="utf-8") + "The commute would be an hour each way.\n",
                    encoding="utf-8")
    edited = tree(copied)
    result, data = batch(copied)
    assert result.exit_code == 0, describe(result)
    assert (data["processed"], data["skipped"], data["failed"]) == (1, 7, 0)
    assert by_path(data)["archive/harbor-and-pine.md"]["status"] == "processed"
    r = Reflection.model_validate_json(
        (copied / ".debrief" / "archive" / "harbor-and-pine.json").read_text(encoding="utf-8"))
    assert r.notes.sha256 == hashlib.sha256(note.read_bytes()).hexdigest()
    assert tree(copied) == edited != before  # only the user's own edit changed their files


def test_peek_reads_the_same_fingerprint_as_the_index(indexed_home: Path,
                                                      built_index: BuiltIndex) -> None:
    from pipeline.index.open import open_index
    from pipeline.settings import IndexSettings

    assert peek_fingerprint("advice") == built_index.fingerprint
    assert open_index(IndexSettings(collection="advice")).fingerprint() == built_index.fingerprint
    assert peek_fingerprint("no-such-collection") is None


def test_dry_run_writes_nothing(copied: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "fresh"
    make_notes(fresh)
    before = tree(fresh, skip=None)
    result, data = batch(fresh, "--dry-run")
    assert result.exit_code == 0, describe(result)
    assert {r["status"] for r in data["results"]} == {"would-process"}
    assert len(data["results"]) == 8 and data["processed"] == 0
    assert tree(fresh, skip=None) == before  # not even an output folder

    everything = tree(copied, skip=None)
    (copied / "keep-03.md").write_text("---\ncompany: Ashgrove\n---\nNew notes, better ones.\n",
                                       encoding="utf-8")
    result = run_cli("batch", copied, "--dry-run")
    assert result.exit_code == 0, describe(result)
    assert result.stdout.splitlines()[0] == "would process keep-03.md (changed)"
    assert "1 to do, 7 up to date" in result.stdout
    changed = tree(copied, skip=None)
    assert {k for k in changed if changed[k] != everything.get(k)} == {"keep-03.md"}

    # a new prompt version or another engine makes every note due again
    with monkeypatch.context() as mp:
        mp.setattr("pipeline.prompts.PROMPT_VERSION", "reflect-v999")
        _, data = batch(copied, "--dry-run")
    assert [r["status"] for r in data["results"]] == ["would-process"] * 8
    result = run_cli("batch", copied, "--dry-run", "--provider", "openai",
                     "--base-url", "http://127.0.0.1:9/v1")
    assert result.stdout.count("(engine changed (offline/debrief-offline-2))") == 7
    assert tree(copied, skip=None) == changed


def test_since_leaves_older_notes_alone(copied: Path) -> None:
    _, data = batch(copied, "--dry-run", "--force", "--since", "2026-05-30")
    todo = {r["path"] for r in data["results"] if r["status"] == "would-process"}
    assert todo == {"keep-01.md", "keep-03.md", "2026/2026-05-30-lakemont-round-1.md"}
    assert data["skipped"] == 5
    result = run_cli("batch", copied, "--since", "30/05/2026")
    assert result.exit_code == 2 and "Invalid value for '--since'" in result.stderr


def test_due_reasons() -> None:
    ident = Identity("openai", "m1", "reflect-v1", "fp1")
    row = {"status": "ok", "sha256": "s", "prompt_version": "reflect-v1", "engine": "openai",
           "model": "m1", "index_fingerprint": "fp1", "out_md": "a.md", "out_json": "a.json"}
    out = Path(__file__).parent / "fixtures" / "notes" / "clear"
    outs = ("keep-01.md", "keep-02.md")  # two files that exist, standing in for outputs
    assert due_reason({**row, "out_md": outs[0], "out_json": outs[1]}, "s", ident, outs, out,
                      False) is None
    row = {**row, "out_md": outs[0], "out_json": outs[1]}
    cases = {
        "new": (None, "s", ident, outs),
        "forced": (row, "s", ident, outs),
        "failed last time": ({**row, "status": "failed"}, "s", ident, outs),
        "changed": (row, "other", ident, outs),
        "new prompt version": (row, "s", Identity("openai", "m1", "reflect-v2", "fp1"), outs),
        "engine changed (openai/m1)": (row, "s", Identity("openai", "m2", "reflect-v1", "fp1"),
                                       outs),
        "advice index changed": (row, "s", Identity("openai", "m1", "reflect-v1", "fp2"), outs),
    }
    for want, (r, sha, idn, o) in cases.items():
        assert due_reason(r, sha, idn, o, out, want == "forced") == want
    missing = ("keep-01.md", "nope.md")
    assert due_reason({**row, "out_json": "nope.md"}, "s", ident, missing, out,
                      False) == "output missing"
    assert due_reason(row, "s", ident, missing, out, False) == "output name changed"


def test_output_names_are_unique_and_stay_inside() -> None:
    rels = ["a.md", "a.txt", "A.md", "digest.md", "b.md", "b.md.md", "sub/digest.md",
            "sub/x.txt", "..md", "...md"]
    names = output_names(rels)
    assert names["b.md.md"] != names["b.md"]
    assert names["sub/digest.md"] == ("sub/digest.md", "sub/digest.json")
    assert names["sub/x.txt"] == ("sub/x.md", "sub/x.json")
    assert names["b.md"] == ("b.md", "b.json")
    flat = [n.casefold() for pair in names.values() for n in pair]
    assert len(flat) == len(set(flat)) and "digest.md" not in flat
    for rel, pair in names.items():
        for n in pair:
            p = PurePosixPath(n)
            assert ".." not in p.parts and not p.is_absolute()
            assert p.parent == PurePosixPath(rel).parent


@pytest.mark.slow  # make test-quick leaves it out (README, Development)
def test_force_and_concurrency_with_a_model_server(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    rels = make_notes(notes, list(GENERATED))
    with FakeOpenAI(latency=0.5, model=MODEL) as fake:
        result, data = batch(notes, "--provider", "openai", "--base-url", fake.url,
                             "--model", MODEL, "--concurrency", "4")
        assert result.exit_code == 0, describe(result)
        assert data["processed"] == 4 and fake.requests == 4
        assert 2 <= fake.max_in_flight <= 4  # requests overlapped, never past the bound
    r = Reflection.model_validate_json(
        (notes / ".debrief" / "archive" / "harbor-and-pine.json").read_text(encoding="utf-8"))
    assert r.engine == "openai" and r.model == MODEL and FINGERPRINT in r.summary
    assert r.decision == "decline"  # "unpaid trial week"

    with FakeOpenAI(latency=0.3, model=MODEL) as fake:
        result, data = batch(notes, "--provider", "openai", "--base-url", fake.url,
                             "--model", MODEL, "--concurrency", "1", "--force")
        assert result.exit_code == 0, describe(result)
        assert data["processed"] == 4 and sorted(by_path(data)) == rels
        assert fake.requests == 4 and fake.max_in_flight == 1
        _, data = batch(notes, "--provider", "openai", "--base-url", fake.url, "--model", MODEL)
        assert data["skipped"] == 4 and fake.requests == 4


BAD = {
    "bad/empty.md": (b"", "the notes file is empty."),
    "bad/binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a binary file"),
    "bad/front-matter.md": (b"---\ncompany: [unclosed\n---\nThe interview went fine today.\n",
                            "malformed front matter"),
    "bad/latin1.txt": ("Caf\u00e9 interview, it went fine overall.\n".encode("latin-1"),
                       "not UTF-8 text"),
}


def test_bad_notes_fail_alone(indexed_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    good = make_notes(notes, ["archive/harbor-and-pine.md", "2026/2026-04-18-corvid-labs.txt"])
    for rel, (data, _) in BAD.items():
        (notes / rel).parent.mkdir(parents=True, exist_ok=True)
        (notes / rel).write_bytes(data)
    before = tree(notes)
    result, data = batch(notes)
    assert result.exit_code == 1, describe(result)
    assert (data["processed"], data["failed"]) == (2, 4)
    res = by_path(data)
    for rel, (_, message) in BAD.items():
        assert res[rel]["status"] == "failed"
        assert message in res[rel]["error"] and "\n" not in res[rel]["error"]
        assert not (notes / ".debrief" / out_paths(rel)[1]).exists()
    for rel in good:
        assert res[rel]["status"] == "processed"
    assert tree(notes) == before

    digest = (notes / ".debrief" / "digest.md").read_text(encoding="utf-8")
    assert "## Harbor & Pine Bakery" in digest and "## Corvid Labs" in digest
    failed = digest.split("## Failed (4)", 1)[1]
    for rel, (_, message) in BAD.items():
        assert f"- `{rel}`: " in failed and message in failed

    # without --json: a line per note on stderr, a summary on stdout, still exit 1
    result = run_cli("batch", notes)
    assert result.exit_code == 1
    assert "0 processed, 2 up to date or skipped, 4 failed" in result.stdout
    assert "failed bad/empty.md: the notes file is empty." in result.stderr


def test_digest_groups_by_company_newest_first(first_run: FirstRun) -> None:
    digest = (first_run.notes / ".debrief" / "digest.md").read_text(encoding="utf-8")
    headings = [line[3:] for line in digest.splitlines() if line.startswith("## ")]
    assert headings == COMPANY_ORDER
    lakemont = digest.split("## Lakemont Children's Hospital", 1)[1].split("## ", 1)[0]
    rows = [line for line in lakemont.splitlines() if line.startswith("| 2026")]
    assert [r.split(" | ")[0] for r in rows] == ["| 2026-06-16", "| 2026-05-30"]
    assert "[keep-01.md](<keep-01.md>)" in rows[0]
    assert "| 2026-01-05 (file date) | [decline-04.md](<decline-04.md>) |" in digest
    for rel, r in by_path(first_run.data).items():
        verdict = "keep pursuing" if r["decision"] == "keep" else "decline"
        step = "thank-you note" if r["decision"] == "keep" else "withdrawal note"
        assert f"| {verdict} | {r['confidence']:.2f} | {step} |" in digest, rel
    assert "Failed" not in digest and "8 reflection(s) from 7 companies" in digest


def test_a_second_batch_is_refused(copied: Path) -> None:
    out = copied / ".debrief"
    lock = filelock.FileLock(str(out / "batch.lock"), blocking=False)
    lock.acquire()
    try:
        (out / "batch.pid").write_text(f"{os.getpid()}\n")
        before = tree(copied, skip=None)
        result = run_cli("batch", copied)
        assert_one_line_error(result, "already running", f"pid {os.getpid()}", exit_code=2)
        assert tree(copied, skip=None) == before
    finally:
        lock.release()


def test_stale_lock_is_taken_over_and_temp_files_swept(copied: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = copied / ".debrief"
    (out / "batch.pid").write_text(f"{dead.pid}\n")
    (out / "archive" / ".harbor-and-pine.md.k3j9x0a1.tmp").write_text("half a reflec")
    (out / "mine.tmp").write_text("not ours to delete")
    result, data = batch(copied)
    assert result.exit_code == 0, describe(result)
    assert f"took over a stale lock from pid {dead.pid} (no longer running)" in result.stderr
    assert data["skipped"] == 8
    assert not (out / "batch.pid").exists()
    assert not (out / "archive" / ".harbor-and-pine.md.k3j9x0a1.tmp").exists()
    assert (out / "mine.tmp").exists()


def test_symlinks_out_of_the_folder_are_not_followed(copied: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("---\ncompany: Elsewhere\n---\nNot part of the notes.\n")
    (copied / "leak.md").symlink_to(outside / "secret.md")
    (copied / "linked").symlink_to(outside, target_is_directory=True)
    before = tree(outside, skip=None)
    result, data = batch(copied)
    assert result.exit_code == 0, describe(result)
    assert data["processed"] == 0
    assert by_path(data)["leak.md"]["status"] == "skipped"
    assert not any("linked" in r["path"] for r in data["results"])
    assert "leak.md: a symlink to outside the notes folder" in result.stderr
    assert not list((copied / ".debrief").rglob("leak.*"))
    assert not (copied / ".debrief" / "linked").exists()
    assert tree(outside, skip=None) == before


@pytest.mark.parametrize("fault", ["1:429/0", "1:429", "1:500", "1:timeout"])
def test_transient_errors_are_retried(indexed_home: Path, tmp_path: Path, fault: str) -> None:
    notes = tmp_path / "notes"
    make_notes(notes, ["archive/2026-01-20-northgate-logistics.md"])
    with FakeOpenAI(faults=fault, hang=10, model=MODEL) as fake:
        result, data = batch(notes, "--provider", "openai", "--base-url", fake.url,
                             "--model", MODEL, "--max-retries", "2", "--timeout", "2")
        stats = fake.stats()
    assert result.exit_code == 0, describe(result)
    assert data["processed"] == 1
    kind = fault.split(":")[1].split("/")[0]
    assert stats["requests"] == 2 and stats["by_status"] == {kind: 1, "200": 1}


def test_retries_exhausted_fail_one_note_not_the_batch(indexed_home: Path,
                                                       tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    make_notes(notes, ["archive/2026-01-20-northgate-logistics.md", "archive/harbor-and-pine.md"])
    with FakeOpenAI(faults="1:500,2:500,3:500", model=MODEL) as fake:
        result, data = batch(notes, "--provider", "openai", "--base-url", fake.url,
                             "--model", MODEL, "--max-retries", "2", "--concurrency", "1")
        assert fake.requests == 4
    assert result.exit_code == 1, describe(result)
    assert (data["processed"], data["failed"]) == (1, 1)
    failed = [r for r in data["results"] if r["status"] == "failed"][0]
    assert failed["error"].startswith("the model server answered HTTP 500")


def _ok_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM notes WHERE status = 'ok'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow  # make test-quick leaves it out (README, Development)
def test_sigkill_mid_run_then_rerun_completes(indexed_home: Path, tmp_path: Path,
                                              cli_env: dict[str, str]) -> None:
    notes = tmp_path / "notes"
    rels = make_notes(notes)
    before = tree(notes)
    out = notes / ".debrief"
    server = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--latency", "0.3",
                               "--model", MODEL], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 30)
        assert ready, "the fake server did not start"
        url = server.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "batch", str(notes),
                                 "--provider", "openai", "--base-url", url, "--model", MODEL,
                                 "--concurrency", "2"], env=cli_env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while _ok_rows(out / "state.sqlite3") < 2:
            assert proc.poll() is None, f"batch ended before the kill: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no note finished in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        done = _ok_rows(out / "state.sqlite3")
        assert 2 <= done < 8, f"{done} notes were done at the kill; it should be mid-run"
        assert (out / "batch.pid").read_text().strip() == str(proc.pid)

        result, data = batch(notes, "--provider", "openai", "--base-url", url,
                             "--model", MODEL, "--concurrency", "4")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.exit_code == 0, describe(result)
    assert f"stale lock from pid {proc.pid}" in result.stderr
    assert (data["processed"], data["skipped"], data["failed"]) == (8 - done, done, 0)
    rows = state_rows(out)
    assert sorted(rows) == rels and {r["status"] for r in rows.values()} == {"ok"}
    for rel in rels:
        md, js = out_paths(rel)
        r = Reflection.model_validate_json((out / js).read_text(encoding="utf-8"))
        assert r.notes.path == rel and r.engine == "openai"
        assert (out / md).read_text(encoding="utf-8").startswith("# ")
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")
                 or p.name.endswith("-journal") or p.name == "batch.pid"]
    assert leftovers == []
    # batch.lock exists only while a batch holds it (pipeline/batch/lock.py)
    expected = {"digest.md", "state.sqlite3", "2026", "archive"}
    expected |= {out_paths(r)[i] for r in rels if "/" not in r for i in (0, 1)}
    assert {p.name for p in out.iterdir()} == expected
    assert tree(notes) == before


def test_bad_folders_are_usage_errors(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("batch", tmp_path / "nope"), "no such folder")
    (tmp_path / "file.md").write_text("notes")
    assert_one_line_error(run_cli("batch", tmp_path / "file.md"), "is a file")
    assert_one_line_error(run_cli("batch", tmp_path, "--out", tmp_path), "holds the notes folder")
    assert_one_line_error(run_cli("batch", tmp_path / "x", "--out", tmp_path), "no such folder")


def test_batch_help_has_examples() -> None:
    result = run_cli("batch", "--help")
    assert result.exit_code == 0
    for text in ("Examples:", "debrief batch ~/interviews --dry-run", "Exit codes",
                 "--concurrency", "--since", "--force", "--max-retries", "--chroma-url"):
        assert text in result.stdout


def test_a_profile_is_part_of_what_makes_a_note_due(copied: Path, tmp_path: Path) -> None:
    prof = tmp_path / "profile.toml"
    prof.write_text('deal_breakers = ["no unpaid trial work"]\n[criteria]\npay = 8\n',
                    encoding="utf-8")
    result, data = batch(copied, "--profile", prof)
    assert result.exit_code == 0, describe(result)
    assert data["processed"] == 8  # the first run had no profile: every note is due again
    r = Reflection.model_validate_json(
        (copied / ".debrief" / "archive" / "harbor-and-pine.json").read_text(encoding="utf-8"))
    assert r.matrix is not None and r.decision == "decline"
    assert r.matrix.forced_decline == "deal-breaker in your profile: no unpaid trial work"
    result, data = batch(copied, "--profile", prof)
    assert data["processed"] == 0
    prof.write_text('deal_breakers = ["no unpaid trial work"]\n[criteria]\npay = 9\n',
                    encoding="utf-8")  # a changed weight changes every reflection
    result, data = batch(copied, "--profile", prof)
    assert data["processed"] == 8
    result, data = batch(copied, "--no-profile")
    assert data["processed"] == 8
    assert Reflection.model_validate_json(
        (copied / ".debrief" / "archive" / "harbor-and-pine.json").read_text(encoding="utf-8")
    ).matrix is None
