"""Index builds are all or nothing: killed, concurrent or racing a batch, nobody reads half of one.

These run real processes: `debrief index` killed with SIGKILL at random moments of its build,
four first-use `debrief reflect`s started at once, a `debrief batch` during `index --rebuild`.
Each ends with a complete index and the same reflections as the session's index gives.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    NOTES_CLEAR,
    BuiltIndex,
    _release_chroma,
    assert_one_line_error,
    describe,
    run_cli,
    write_advice_doc,
)

from pipeline.index import store
from pipeline.index.open import open_index
from pipeline.index.peek import peek_fingerprint
from pipeline.settings import IndexSettings

NOTE = NOTES_CLEAR / "keep-01.md"
SEED = int(os.environ.get("DEBRIEF_TEST_SEED", time.time_ns() % 100_000))
BUILD_START_TIMEOUT = 180  # seconds until a started `debrief index` has created its build folder


def _env(cli_env: dict[str, str], home: Path) -> dict[str, str]:
    return {**cli_env, "DEBRIEF_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}


def _debrief(*args: object, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_new_build(chroma: Path, before: set[str], proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + BUILD_START_TIMEOUT
    while time.monotonic() < deadline:
        new = [d for d in store.builds(chroma) if d.name not in before]
        if new:
            return new[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"debrief ended (exit {proc.returncode}) before it started a build:\n"
                        f"{out}\n{err}")
        time.sleep(0.02)
    pytest.fail(f"no build folder appeared in {chroma} within {BUILD_START_TIMEOUT} s")


def _rows_in(folder: Path) -> int:
    """Records Chroma holds in a (killed) build, read-only; -1 when it cannot tell."""
    try:
        con = sqlite3.connect(f"{(folder / 'chroma.sqlite3').as_uri()}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return -1


def _kill_during_build(args: list[object], home: Path, env: dict[str, str], rng: random.Random,
                       after: int) -> tuple[int, int]:
    """Start `debrief ARGS` and SIGKILL it once its new build holds at least ``after`` records
    (watched read-only from outside), plus a random moment. Returns the target and the records
    the killed build holds; when the build was complete before the kill landed, it is undone
    (build and pointer as they were) and tried again with a lower target."""
    chroma = home / "chroma"
    pointer = chroma / store.pointer_name("advice")
    for _attempt in range(6):
        before = {d.name for d in store.builds(chroma)}
        was = pointer.read_bytes() if pointer.exists() else None
        proc = _debrief(*args, env=env, cwd=home.parent)
        folder = _wait_for_new_build(chroma, before, proc)
        while proc.poll() is None and _rows_in(folder) < after:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            assert proc.returncode == -signal.SIGKILL
            if not (folder / store.MARKER).exists():
                return after, _rows_in(folder)
        else:
            proc.communicate()
        # it finished first: undo that build and kill sooner next time
        if was is None:
            pointer.unlink(missing_ok=True)
        else:
            pointer.write_bytes(was)
        _release_chroma(str(home))
        shutil.rmtree(folder)
        after //= 2
    pytest.fail("the build always finished before it could be killed")


def _doctor_index(home: Path) -> dict[str, Any]:
    result = run_cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return checks["index"]


@pytest.fixture
def reference(built_index: BuiltIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The offline reflection on NOTE from a copy of the session's complete index."""
    home = tmp_path / "reference-home"
    home.mkdir()
    shutil.copytree(built_index.chroma, home / "chroma")
    with monkeypatch.context() as mp:
        mp.setenv("DEBRIEF_HOME", str(home))
        mp.setenv("DEBRIEF_EMBEDDING_CACHE", "off")
        result = run_cli("reflect", NOTE, "--json", "--provider", "offline")
    _release_chroma(str(home))
    assert result.exit_code == 0, describe(result)
    return result.stdout


def _reflect_offline() -> Any:
    return run_cli("reflect", NOTE, "--json", "--provider", "offline")


# -- killed builds ---------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_builds_are_never_used_and_are_repaired(debrief_env: Path, cli_env: dict[str, str],
                                                       reference: str,
                                                       built_index: BuiltIndex) -> None:
    rng = random.Random(SEED)
    home = debrief_env
    home.mkdir(parents=True, exist_ok=True)
    env = _env(cli_env, home)
    chroma = home / "chroma"
    log = [f"seed {SEED}"]

    # 1. the very first build, killed: no index at all, and nothing pretends otherwise
    # (passages go first, 64 at a time, then the cue lines: 64 or 128 of 204 passages written)
    target, rows = _kill_during_build(["index"], home, env, rng, rng.choice([64, 128]))
    log.append(f"first build killed at >= {target}: {rows} records written")
    assert not (chroma / store.pointer_name("advice")).exists()
    assert peek_fingerprint("advice") is None
    assert open_index(IndexSettings()).state().status == "partial"
    index = _doctor_index(home)
    assert index["status"] == "fail" and "incomplete" in index["detail"], index
    assert "debrief index" in index["hint"]

    # 2. the next use repairs it by itself: a complete index, the same reflection
    result = _reflect_offline()
    assert result.exit_code == 0, describe(result)
    assert "incomplete" in result.stderr and "building it again" in result.stderr
    assert result.stdout == reference
    assert peek_fingerprint("advice") == built_index.fingerprint
    first = store.resolve_embedded(chroma, "advice")
    assert first.status == "complete" and first.counts == (built_index.chunks, built_index.cues)

    # 3. rebuilds killed at random moments: the last complete build stays in use
    # (before any record, or with every passage written and the cue lines under way)
    for after in (rng.choice([0, 64]), rng.choice([204, 268])):
        target, rows = _kill_during_build(["index", "--rebuild"], home, env, rng, after)
        log.append(f"rebuild killed at >= {target}: {rows} records written")
        _release_chroma(str(home))  # a new run is a new process
        assert store.resolve_embedded(chroma, "advice").build == first.build
        assert peek_fingerprint("advice") == built_index.fingerprint
        again = _reflect_offline()
        assert again.exit_code == 0, describe(again)
        assert "building" not in again.stderr
        assert again.stdout == reference
        index = _doctor_index(home)
        assert index["status"] == "ok" and "unfinished build" in index["detail"], index

    # 4. an unchanged `debrief index` removes what the killed builds left
    report = json.loads(run_cli("index", "--json").stdout)
    assert report["embedded"] == 0 and report["fingerprint"] == built_index.fingerprint
    assert [d.name for d in store.builds(chroma)] == [first.build]
    assert not list(chroma.glob(".*.tmp"))
    print("; ".join(log))


# -- concurrent first use --------------------------------------------------------------------
@pytest.mark.slow
def test_concurrent_first_use_builds_once_and_all_agree(debrief_env: Path, cli_env: dict[str, str],
                                                        reference: str) -> None:
    home = debrief_env
    home.mkdir(parents=True, exist_ok=True)
    env = {**_env(cli_env, home), "DEBRIEF_EMBEDDING_CACHE": "off"}
    procs = [_debrief("reflect", NOTE, "--json", "--provider", "offline", env=env, cwd=home.parent)
             for _ in range(4)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}"
        assert out == reference, err
    builders = [err for _, err in outs if "building it now" in err]
    assert len(builders) == 1, [err for _, err in outs]
    # the others waited for that build (or started after it had finished)
    assert all("Error" not in err for _, err in outs)
    chroma = home / "chroma"
    assert len(store.builds(chroma)) == 1 and not store.unfinished_builds(chroma)
    assert store.resolve_embedded(chroma, "advice").status == "complete"


@pytest.mark.slow
def test_batch_during_rebuild_reads_the_last_complete_index(indexed_home: Path,
                                                            cli_env: dict[str, str],
                                                            built_index: BuiltIndex,
                                                            tmp_path: Path) -> None:
    env = {**_env(cli_env, indexed_home), "DEBRIEF_EMBEDDING_CACHE": "off"}
    chroma = indexed_home / "chroma"
    old = store.resolve_embedded(chroma, "advice").build
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("keep-01.md", "keep-04.md", "decline-01.md", "decline-03.md"):
        shutil.copy(NOTES_CLEAR / name, notes / f"2026-11-20-{name}")
    # what the same batch gives with nothing else going on
    quiet = _debrief("batch", notes, "--json", "--provider", "offline", "--out", tmp_path / "quiet",
                     env=env, cwd=tmp_path)
    out, err = quiet.communicate(timeout=600)
    assert quiet.returncode == 0, f"{out}\n{err}"

    rebuild = _debrief("index", "--rebuild", "--json", env=env, cwd=tmp_path)
    _wait_for_new_build(chroma, {old}, rebuild)
    busy = _debrief("batch", notes, "--json", "--provider", "offline", "--out", tmp_path / "busy",
                    env=env, cwd=tmp_path)
    b_out, b_err = busy.communicate(timeout=900)
    r_out, r_err = rebuild.communicate(timeout=900)
    assert busy.returncode == 0, f"{b_out}\n{b_err}"
    assert rebuild.returncode == 0, f"{r_out}\n{r_err}"
    assert json.loads(r_out)["fingerprint"] == built_index.fingerprint
    assert _reflections(tmp_path / "busy") == _reflections(tmp_path / "quiet")
    assert store.resolve_embedded(chroma, "advice").build != old


def _reflections(out: Path) -> dict[str, str]:
    found = {}
    for path in sorted(out.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        with contextlib.suppress(ValueError):
            if "decision" in json.loads(text):
                found[str(path.relative_to(out))] = text
    assert len(found) == 4, sorted(found)
    return found


# -- who may remove an old build -------------------------------------------------------------
def test_an_old_build_stays_while_a_reader_holds_it(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    doc = write_advice_doc(user, "test-snack-advice")
    args = ("--no-default-corpus", "--corpus", user, "--collection", "mine")
    first = json.loads(run_cli("index", *args, "--json").stdout)
    reader = open_index(IndexSettings(collection="mine"))
    assert reader.fingerprint() == first["fingerprint"]
    held = store.resolve_embedded(reader.root, "mine").build

    # the corpus changes and is indexed: a new build becomes current, the held one stays
    doc.write_text(doc.read_text(encoding="utf-8").replace("cost an employer little",
                                                           "cost an employer very little"),
                   encoding="utf-8")
    second = json.loads(run_cli("index", *args, "--json").stdout)
    assert second["fingerprint"] != first["fingerprint"] and second["embedded"] >= 1
    assert peek_fingerprint("mine") == second["fingerprint"]
    chroma = reader.root
    assert held in {d.name for d in store.builds(chroma)}
    # a reader follows the pointer at its next use, and still reads the old build meanwhile
    assert reader.passages().metadata["fingerprint"] == second["fingerprint"]
    assert reader.fingerprint() == second["fingerprint"]

    reader.close()  # no one holds the old build now: the next index run removes it
    del reader
    third = json.loads(run_cli("index", *args, "--json").stdout)
    assert third["embedded"] == 0
    assert held not in {d.name for d in store.builds(chroma)}
    assert len(store.builds(chroma)) == 1


def _index_of_my_own(tmp_path: Path) -> tuple[Path, tuple[object, ...], dict[str, Any]]:
    """A one-document corpus indexed as "mine": its folder, the index flags, the report."""
    user = tmp_path / "mine"
    write_advice_doc(user, "test-snack-advice")
    args = ("--no-default-corpus", "--corpus", user, "--collection", "mine")
    return user, args, json.loads(run_cli("index", *args, "--json").stdout)


def test_doctor_fails_on_a_build_without_its_marker_and_index_repairs_it(tmp_path: Path) -> None:
    user, args, report = _index_of_my_own(tmp_path)
    chroma = Path(report["location"])
    current = store.resolve_embedded(chroma, "mine")
    (current.path / store.MARKER).unlink()  # as if the build had stopped before its last step
    assert peek_fingerprint("mine") is None
    result = run_cli("doctor", "--json", "--collection", "mine", "--corpus", user)
    index = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["index"]
    assert result.exit_code == 1 and index["status"] == "fail", index
    assert "incomplete" in index["detail"] and "debrief index" in index["hint"]
    repaired = json.loads(run_cli("index", *args, "--json").stdout)
    assert repaired["embedded"] == report["embedded"]  # nothing trusted from the partial build
    assert peek_fingerprint("mine") == report["fingerprint"]
    assert [d.name for d in store.builds(chroma)] == [store.resolve_embedded(chroma, "mine").build]


@pytest.mark.slow
def test_a_build_from_an_older_debrief_is_built_again_on_first_use(indexed_home: Path,
                                                                   reference: str) -> None:
    """Its readers wrote its vector files from their own memory (writer.py): it is not used."""
    chroma = indexed_home / "chroma"
    old = store.resolve_embedded(chroma, "advice")
    marker = json.loads((old.path / store.MARKER).read_text(encoding="utf-8"))
    del marker["vectors"]
    marker["format"] = 2
    (old.path / store.MARKER).write_text(json.dumps(marker), encoding="utf-8")
    assert peek_fingerprint("advice") is None
    result = _reflect_offline()
    assert result.exit_code == 0, describe(result)
    assert "made by an older debrief" in result.stderr and "building it again" in result.stderr
    assert result.stdout == reference
    new = store.resolve_embedded(chroma, "advice")
    assert new.status == "complete" and new.build != old.build and new.vectors


def test_a_changed_vector_file_is_one_line_or_repaired(tmp_path: Path) -> None:
    user, args, report = _index_of_my_own(tmp_path)
    chroma = Path(report["location"])
    current = store.resolve_embedded(chroma, "mine")
    assert current.vectors and all(len(v) == 64 for v in current.vectors.values())
    victim = current.path / sorted(current.vectors)[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x01")
    result = run_cli("doctor", "--json", "--collection", "mine", "--corpus", user)
    index = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["index"]
    assert index["status"] == "fail" and "changed since it was built" in index["detail"], index
    repaired = json.loads(run_cli("index", *args, "--json").stdout)
    assert repaired["fingerprint"] == report["fingerprint"]
    assert store.resolve_embedded(chroma, "mine").build != current.build


# -- a file where the index folder should be -------------------------------------------------
def test_chroma_replaced_by_a_file_is_one_line_everywhere_and_rebuild_sets_it_aside(
        debrief_env: Path) -> None:
    debrief_env.mkdir(parents=True, exist_ok=True)
    chroma = debrief_env / "chroma"
    chroma.write_text("not a folder\n")
    line = assert_one_line_error(_reflect_offline(), "is a file", "index --rebuild")
    assert str(chroma) in line
    assert_one_line_error(run_cli("index"), "is a file")
    index = _doctor_index(debrief_env)
    assert index["status"] == "fail" and "is a file" in index["detail"], index
    assert "index --rebuild" in index["hint"]
    result = run_cli("index", "--rebuild", "--no-default-corpus", "--corpus",
                     write_advice_doc(debrief_env.parent / "mine").parent, "--json")
    assert result.exit_code == 0, describe(result)
    assert "moved it to" in result.stderr
    aside = [p for p in debrief_env.iterdir() if p.name.startswith("chroma.broken-")]
    assert len(aside) == 1 and aside[0].read_text() == "not a folder\n"
    assert chroma.is_dir() and store.resolve_embedded(chroma, "advice").status == "complete"


# -- a Chroma server -------------------------------------------------------------------------
@pytest.mark.server
@pytest.mark.slow
def test_killed_rebuild_on_a_server_leaves_the_last_complete_build_in_use(
        debrief_env: Path, cli_env: dict[str, str], reference: str, tmp_path: Path) -> None:
    import chromadb
    from test_chroma_server import chroma_run

    debrief_env.mkdir(parents=True, exist_ok=True)
    env = _env(cli_env, debrief_env)
    with chroma_run(tmp_path / "server-data") as (url, _):
        first = json.loads(run_cli("index", "--chroma-url", url, "--json").stdout)
        settings = IndexSettings(chroma_url=url)
        current = open_index(settings).state()
        assert current.status == "complete" and current.fingerprint == first["fingerprint"]

        host, port = url.removeprefix("http://").split(":")
        client = chromadb.HttpClient(host=host, port=int(port))
        proc = _debrief("index", "--chroma-url", url, "--rebuild", env=env, cwd=tmp_path)
        deadline = time.monotonic() + BUILD_START_TIMEOUT
        new = f"advice.{current.build}"
        rows = 0
        while proc.poll() is None and time.monotonic() < deadline:
            names = [c.name for c in client.list_collections()]
            building = [n for n in names if n.startswith("advice.b") and n != new
                        and not n.endswith("-cues")]
            if building:
                rows = client.get_collection(building[0]).count()
                if rows >= 64:
                    break
            time.sleep(0.1)
        assert proc.poll() is None, "the rebuild finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        print(f"server rebuild killed with {rows} passages written")

        after = open_index(settings).state()
        assert (after.status, after.build) == ("complete", current.build)
        result = run_cli("reflect", NOTE, "--json", "--provider", "offline", "--chroma-url", url)
        assert result.exit_code == 0, describe(result)
        assert result.stdout == reference
        doctor = json.loads(run_cli("doctor", "--json", "--chroma-url", url).stdout)
        index = {c["name"]: c for c in doctor["checks"]}["index"]
        assert index["status"] == "ok" and current.build in index["detail"], index
        again = json.loads(run_cli("index", "--chroma-url", url, "--json").stdout)
        assert again["embedded"] == 0 and again["fingerprint"] == first["fingerprint"]


def test_a_folder_of_the_users_called_pipeline_does_not_stand_in_for_debriefs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index writer is a child Python process; run from a folder holding a "pipeline"
    package of the user's own, it must still run debrief's."""
    theirs = tmp_path / "project"
    (theirs / "pipeline" / "index").mkdir(parents=True)
    (theirs / "pipeline" / "__init__.py").write_text('raise SystemExit("not debrief")\n',
                                                      encoding="utf-8")
    (theirs / "pipeline" / "index" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(theirs)
    user = tmp_path / "mine"
    write_advice_doc(user, "test-snack-advice")
    result = run_cli("index", "--no-default-corpus", "--corpus", user, "--collection", "mine",
                     "--json")
    assert result.exit_code == 0, describe(result)
    assert json.loads(result.stdout)["embedded"] > 0
