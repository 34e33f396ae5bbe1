"""Chroma server mode against a real `chroma run` started by these tests (one per module).

The server comes with the chromadb wheel (the `chroma` script beside this Python). It needs
no model: debrief embeds locally and sends vectors, documents and metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    NOTES_CLEAR,
    ROOT,
    BuiltIndex,
    _clean_env,
    assert_one_line_error,
    describe,
    run_cli,
    write_advice_doc,
)

from pipeline.home import EMBEDDING_CACHE as FILE
from pipeline.schema import Reflection

pytestmark = [pytest.mark.server, pytest.mark.slow]  # a real server: about a minute
CHROMA = Path(sys.executable).parent / "chroma"
STARTUP_SECONDS = 60
NOTES = [NOTES_CLEAR / n for n in ("keep-01.md", "keep-04.md", "decline-01.md", "decline-03.md")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _heartbeat(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=timeout) as resp:
            return resp.status == 200 and "heartbeat" in resp.read().decode()
    except OSError:
        return False


@contextlib.contextmanager
def chroma_run(data: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`chroma run` on a free port; yields (url, process) once the heartbeat answers."""
    if not CHROMA.is_file():
        pytest.fail(f"{CHROMA} is missing; it ships with the chromadb wheel")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data.parent / f"{data.name}.log").open("wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _heartbeat(url):
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run not up after {STARTUP_SECONDS} s; see {log.name}")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_run(tmp_path_factory.mktemp("chroma-server") / "data") as (url, _):
        yield url


@pytest.fixture(scope="module")
def server_index(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`debrief index --chroma-url URL` once for the module: the shipped corpus, 'advice'."""
    home = tmp_path_factory.mktemp("server-index-home")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp, home)
        result = run_cli("index", "--chroma-url", server, "--json")
    assert result.exit_code == 0, describe(result)
    return json.loads(result.stdout)


def _counts(server: str, collection: str) -> tuple[int, int]:
    """Passages and cue lines of the collection's current build on the server."""
    from pipeline.index.open import open_index
    from pipeline.settings import IndexSettings

    return open_index(IndexSettings(collection=collection, chroma_url=server)).counts()


def _reflect(note: Path, *args: object) -> Reflection:
    result = run_cli("reflect", note, "--json", *args)
    assert result.exit_code == 0, describe(result)
    return Reflection.model_validate_json(result.stdout)


# -- index and reflect -----------------------------------------------------------------------
def test_index_through_the_server(server: str, server_index: dict[str, Any],
                                  built_index: BuiltIndex) -> None:
    assert server_index["location"] == server
    assert server_index["embedded"] == built_index.chunks + built_index.cues
    # same corpus, same model: the same version as the embedded index
    assert server_index["fingerprint"] == built_index.fingerprint
    again = run_cli("index", "--chroma-url", server, "--json")
    assert again.exit_code == 0, describe(again)
    report = json.loads(again.stdout)
    assert report["embedded"] == 0 and report["unchanged"] == server_index["embedded"]


def test_reflect_through_the_server_matches_the_embedded_index(
        server: str, server_index: dict[str, Any], indexed_home: Path) -> None:
    for note in NOTES:
        remote = _reflect(note, "--chroma-url", server)
        local = _reflect(note)
        assert remote.decision == local.decision, note.name
        assert remote.engine == "offline"
        assert [s.id for s in remote.sources] == [s.id for s in local.sources], note.name
        assert remote.model_dump() == local.model_dump(), note.name
    # no index was built locally for the server runs beyond what indexed_home copied in;
    # the note text's vectors are kept locally whichever index is used
    assert sorted(p.name for p in indexed_home.iterdir()
                  if not p.name.startswith(FILE)) == ["chroma"]


def test_environment_selects_the_server(server: str, server_index: dict[str, Any],
                                        monkeypatch: pytest.MonkeyPatch,
                                        debrief_env: Path) -> None:
    monkeypatch.setenv("DEBRIEF_CHROMA_URL", server)
    monkeypatch.setenv("DEBRIEF_COLLECTION", "advice")
    monkeypatch.setenv("DEBRIEF_CHROMA_TOKEN", "chroma-token-not-checked-by-this-server")
    r = _reflect(NOTES[0])
    assert r.index_fingerprint == server_index["fingerprint"]
    # no embedded index was created: the home holds nothing of Chroma's
    assert not (debrief_env / "chroma").exists()


def test_two_collections_coexist(server: str, server_index: dict[str, Any],
                                 tmp_path: Path) -> None:
    team = tmp_path / "team-advice"
    write_advice_doc(team, "team-perks-advice")
    result = run_cli("index", "--chroma-url", server, "--collection", "team-advice",
                     "--no-default-corpus", "--corpus", team, "--json")
    assert result.exit_code == 0, describe(result)
    team_report = json.loads(result.stdout)
    assert team_report["docs"] == 1 and team_report["embedded"] > 0

    import chromadb

    host, port = server.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    names = {c.name for c in client.list_collections()}
    assert {"advice", "team-advice"} <= names  # each a pointer to its current build
    assert _counts(server, "team-advice") == (team_report["chunks"], team_report["cues"])
    assert _counts(server, "advice")[0] == server_index["chunks"]

    note = tmp_path / "2026-11-20-snacks.md"
    note.write_text("- The office kitchen was stocked with good snacks and fruit.\n"
                    "- They buy the team lunch every friday, which felt generous.\n"
                    "- The manager was kind and answered every question clearly.\n",
                    encoding="utf-8")
    team_r = _reflect(note, "--chroma-url", server, "--collection", "team-advice")
    assert {s.doc_id for s in team_r.sources} == {"team-perks-advice"}
    shipped = _reflect(note, "--chroma-url", server)
    assert "team-perks-advice" not in {s.doc_id for s in shipped.sources}
    assert team_r.index_fingerprint != shipped.index_fingerprint
    # re-indexing the shipped collection leaves the team one alone
    again = run_cli("index", "--chroma-url", server, "--json")
    assert json.loads(again.stdout)["embedded"] == 0
    assert _counts(server, "team-advice") == (team_report["chunks"], team_report["cues"])


def test_two_batches_in_parallel_share_the_server(server: str, server_index: dict[str, Any],
                                                  tmp_path: Path,
                                                  cli_env: dict[str, str]) -> None:
    if not (ROOT / "pipeline" / "commands" / "batch_cmd.py").is_file():
        pytest.skip("the batch command does not exist yet")
    runs = []
    for i, notes in enumerate((NOTES[:2], NOTES[2:])):
        folder, home = tmp_path / f"person-{i}", tmp_path / f"home-{i}"
        folder.mkdir()
        for n in notes:
            (folder / n.name).write_bytes(n.read_bytes())
        env = {**cli_env, "DEBRIEF_HOME": str(home), "DEBRIEF_CHROMA_URL": server}
        runs.append((folder, home, notes, subprocess.Popen(
            [sys.executable, "-m", "pipeline", "batch", str(folder), "--json"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for folder, home, notes, proc in runs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{folder}: exit {proc.returncode}\n{out}\n{err}"
        summary = json.loads(out)
        assert summary["processed"] == len(notes) and summary["failed"] == 0, out
        for n in notes:
            r = Reflection.model_validate_json(
                (folder / ".debrief" / f"{n.stem}.json").read_text(encoding="utf-8"))
            assert r.index_fingerprint == server_index["fingerprint"]
        # the server held the index: no embedded Chroma was made in either home
        assert not (home / "chroma").exists()


# -- when the server is not there or not Chroma ---------------------------------------------
def test_server_that_goes_down(tmp_path: Path, debrief_env: Path) -> None:
    team = tmp_path / "team"
    write_advice_doc(team, "team-perks-advice")
    with chroma_run(tmp_path / "short-lived") as (url, proc):
        result = run_cli("index", "--chroma-url", url, "--no-default-corpus", "--corpus", team)
        assert result.exit_code == 0, describe(result)
        proc.terminate()
        proc.wait(timeout=10)
        for args in (["index"], ["reflect", NOTES[0], "--json"]):
            line = assert_one_line_error(run_cli(*args, "--chroma-url", url), "cannot reach",
                                         "chroma run")
            assert url in line


class _NotChroma(BaseHTTPRequestHandler):
    """Any HTTP server that is not Chroma; records the headers it was sent."""

    seen: list[dict[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _NotChroma.seen.append(dict(self.headers))
        body = b"<html>not chroma</html>"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture
def not_chroma() -> Iterator[str]:
    _NotChroma.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotChroma)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_wrong_url_is_one_line(not_chroma: str, unused_port: int, server: str) -> None:
    cases = [
        not_chroma,                                        # some other web server
        f"http://127.0.0.1:{unused_port}",                 # nothing listening
        server.replace("http://", "https://"),             # TLS to a plain-HTTP server
    ]
    for url in cases:
        line = assert_one_line_error(
            run_cli("reflect", NOTES[0], "--json", "--chroma-url", url), "cannot reach")
        assert url in line


def test_token_is_sent_as_a_bearer_header_and_never_shown(not_chroma: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token = "chroma-secret-token-4f1c"
    monkeypatch.setenv("DEBRIEF_CHROMA_TOKEN", token)
    result = run_cli("index", "--chroma-url", not_chroma)
    line = assert_one_line_error(result, "cannot reach")
    assert token not in result.output and token not in line
    assert _NotChroma.seen, "the client never called the server"
    assert all(h.get("Authorization") == f"Bearer {token}" for h in _NotChroma.seen)


def test_collection_built_with_another_model_is_refused_on_the_server(server: str) -> None:
    import chromadb
    from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

    host, port = server.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    for name in ("foreign", "foreign-cues"):
        col = client.get_or_create_collection(name, embedding_function=DefaultEmbeddingFunction(),
                                              metadata={"model_id": "someone-else"})
        col.add(ids=["other#0"], embeddings=[[0.05] * 384], documents=["some text"],
                metadatas=[{"doc_id": "other", "stance": "keep", "hash": "x"}])
    for args in (["reflect", NOTES[0], "--json"], ["index"]):
        assert_one_line_error(run_cli(*args, "--chroma-url", server, "--collection", "foreign"),
                              "another embedding model", "rebuild")


def test_two_first_index_runs_racing_on_one_collection(server: str, tmp_path: Path,
                                                       cli_env: dict[str, str]) -> None:
    """Two machines indexing a new collection at the same moment: both succeed, one copy."""
    team = tmp_path / "team"
    write_advice_doc(team, "team-perks-advice")
    write_advice_doc(team, "team-lunch-advice", stance="neutral")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "pipeline", "index", "--chroma-url", server, "--collection",
         "race-team", "--no-default-corpus", "--corpus", str(team), "--json"],
        env={**cli_env, "DEBRIEF_HOME": str(tmp_path / f"home-{i}")}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
        reports.append(json.loads(out))
    assert reports[0]["fingerprint"] == reports[1]["fingerprint"]
    assert _counts(server, "race-team") == (reports[0]["chunks"], reports[0]["cues"])
    assert json.loads(run_cli("index", "--chroma-url", server, "--collection", "race-team",
                              "--no-default-corpus", "--corpus", team, "--json").stdout
                      )["embedded"] == 0


def test_doctor_checks_the_server_and_its_index(server: str, server_index: dict[str, Any],
                                                built_index: BuiltIndex) -> None:
    result = run_cli("doctor", "--json", "--chroma-url", server)
    assert result.exit_code == 0, describe(result)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["chroma server"]["status"] == "ok"
    assert checks["index"]["status"] == "ok"
    assert f"{built_index.chunks} passages" in checks["index"]["detail"]
    assert checks["corpus"]["status"] == "ok"
    missing = run_cli("doctor", "--json", "--chroma-url", server, "--collection", "nothing-here")
    assert missing.exit_code == 0, describe(missing)
    index = {c["name"]: c for c in json.loads(missing.stdout)["checks"]}["index"]
    assert index["status"] == "warn" and "--collection nothing-here" in index["hint"]


def test_eval_uses_the_server(server: str, server_index: dict[str, Any], tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    for ext in (".md", ".yaml"):
        name = f"a01-clear-keep-platform-team{ext}"
        (cases / name).write_bytes((ROOT / "eval" / "cases" / name).read_bytes())
    result = run_cli("eval", "--mode", "offline", "--chroma-url", server, "--cases", cases,
                     "--report-dir", tmp_path / "report", "--baseline", tmp_path / "b.json")
    assert result.exit_code == 0, describe(result)
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["versions"]["index_fingerprint"] == server_index["fingerprint"]
